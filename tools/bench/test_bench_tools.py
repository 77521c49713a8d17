#!/usr/bin/env python3
"""Tests of the GPU benchmark's host-side tools (standard library only, no GPU): the summary's arithmetic on
records written by hand, zero_mask_logit.py on a small safetensors file, and kernel_times.py on an Nsight
Compute CSV written by hand.

  python3 tools/bench/test_bench_tools.py
"""
import contextlib
import io
import json
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gpu_llada8b  # noqa: E402
import kernel_times  # noqa: E402


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def record(group, i, seconds, nfe, denoise):
    return {"id": f"{group}-{i}", "seconds": seconds, "nfe": nfe, "timings": {"denoise": denoise, "prefill": 0.0}}


class SummaryTest(unittest.TestCase):
    def test_rows_follow_from_the_records(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            write_jsonl(out / "dlm_llada_b1.jsonl", [
                record("step", 0, 0.48, 32, 0.47), record("step", 1, 0.50, 32, 0.49),
                record("dual8", 0, 0.20, 8, 0.19), record("dual128", 0, 1.30, 128, 1.27),
                record("llada", 0, 4.0, 256, 3.9), {"id": "llada-1", "error": "bad item"},
            ])
            write_jsonl(out / "torch_llada.jsonl", [
                {"measurement": "step", "batch": 1, "step_ms": 16.5, "forward_ms": 16.0},
                {"measurement": "dual-step", "batch": 1, "block_step_ms": 18.0, "block_forward_ms": 17.0},
                {"measurement": "llada", "batch": 1, "tokens_per_s": 50.0},
                {"measurement": "fast-dllm", "batch": 1, "error": "out of memory"},
            ])
            with contextlib.redirect_stdout(io.StringIO()):  # it also prints the table
                gpu_llada8b.Summary(out).write()
            text = (out / "summary.md").read_text()
        # The median request: (0.48 + 0.50) / 2 over 32 forwards.
        self.assertIn("| a | full-recompute step, whole (ms) | 1 | 15.31 ms | 16.50 ms | 1.08x |", text)
        # 120 block steps between the 128- and the 8-step dual-cache runs.
        self.assertIn("| b | dual-cache block step, whole (ms) | 1 | 9.17 ms | 18.00 ms | 1.96x |", text)
        self.assertIn("| c | LLaDA e2e: 256 steps, 1 token/step, full recompute (tok/s) | 1 | 64.00 tok/s |"
                      " 50.00 tok/s | 1.28x |", text)
        # 256 tokens in 1.3 s; the reference's error leaves its side empty and is noted.
        self.assertIn("| 1 | 196.9 tok/s | — | — |", text)
        self.assertIn("reference fast-dllm b1: out of memory", text)
        self.assertIn("dlm llada b1: llada-1: bad item", text)

    def test_notes_say_which_steps_did_not_run_and_why(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            (out / "steps.tsv").write_text("dlm_llada_b1\t0\t9\ndlm_ar_b1\t124\t90\n"
                                           "dlm_profile\tskipped\t0\ndlm_bench_ar\tunselected\t0\n"
                                           "dlm_bench_no_graphs\tunselected\t0\n")
            with contextlib.redirect_stdout(io.StringIO()):
                gpu_llada8b.Summary(out).write()
            text = (out / "summary.md").read_text()
        self.assertIn("- step dlm_ar_b1: timed out, see dlm_ar_b1.log", text)
        self.assertIn("- step dlm_profile: skipped, no time left in BUDGET_S", text)
        self.assertIn("- not in STEPS, so not run: dlm_bench_ar, dlm_bench_no_graphs", text)
        self.assertNotIn("dlm_llada_b1:", text)


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, bytes)."""
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


class ZeroMaskLogitTest(unittest.TestCase):
    def run_tool(self, directory):
        return subprocess.run([sys.executable, str(HERE / "zero_mask_logit.py"), str(directory)],
                              capture_output=True, text=True)

    def test_zeroes_the_mask_row_of_the_lm_head_only(self):
        with tempfile.TemporaryDirectory() as d:
            directory = Path(d)
            (directory / "config.json").write_text(json.dumps({"mask_token_id": 3}))
            embedding = bytes(range(1, 41))            # f32 [5, 2]
            head = bytes((i % 250) + 1 for i in range(20))  # bf16 [5, 2]
            write_safetensors(directory / "model.safetensors", {
                "model.transformer.wte.weight": ("F32", [5, 2], embedding),
                "model.transformer.ff_out.weight": ("BF16", [5, 2], head),
            })
            before = (directory / "model.safetensors").read_bytes()
            result = self.run_tool(directory)
            self.assertEqual(result.returncode, 0, result.stderr)
            after = (directory / "model.safetensors").read_bytes()
            start = len(before) - len(head) + 3 * 4  # row 3 of 4-byte rows
            self.assertEqual(after[start:start + 4], bytes(4))
            self.assertEqual(after[:start] + after[start + 4:], before[:start] + before[start + 4:])

    def test_refuses_a_tied_head_and_names_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            directory = Path(d)
            (directory / "config.json").write_text(json.dumps({"mask_token_id": 3, "tie_word_embeddings": True}))
            result = self.run_tool(directory)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("config.json: the LM head is tied to the embeddings", result.stderr)


NCU_CSV = """==PROF== Connected to process 7 (/tmp/dlm)
"ID","Process ID","Kernel Name","Grid Size","Block Size","gpu__time_duration.sum"
"","","","","","usecond"
"0","7","void rms_norm<(int)4>(const float *, int)","(1, 1, 1)","(256, 1, 1)","2.5"
"1","7","void gemm<cutlass::bfloat16_t, (int)128>(Params)","(96, 1, 1)","(384, 1, 1)","1,010.0"
dlm: a line of the program's own output
"2","7","void rms_norm<(int)4>(const float *, int)","(1, 1, 1)","(256, 1, 1)","3.5"
"3","7","void gemm<cutlass::bfloat16_t, (int)128>(Params)","(48, 1, 1)","(384, 1, 1)","984.0"
"""


class KernelTimesTest(unittest.TestCase):
    def test_sums_by_kernel_and_grid_in_microseconds(self):
        kernels = kernel_times.read_kernels(NCU_CSV.splitlines())
        self.assertEqual(len(kernels), 4)
        self.assertEqual(kernels[1][3], 1010.0)
        text = kernel_times.table(kernels, per=2)
        self.assertIn("4 launches, 1,000.0 µs per 2", text)
        rows = [line for line in text.splitlines() if line.startswith("| `")]
        self.assertEqual(rows[0], "| `gemm<cutlass::bfloat16_t, (int)128>` | (96, 1, 1) | (384, 1, 1) | 0.5 | 505.0 | "
                                  "1,010.00 | 50.5% |")
        self.assertEqual(rows[2], "| `rms_norm<(int)4>` | (1, 1, 1) | (256, 1, 1) | 1 | 3.0 | 3.00 | 0.3% |")

    def test_nanoseconds_without_a_units_row(self):
        lines = ['"Kernel Name","Grid Size","Block Size","gpu__time_duration.sum"', '"k","(1, 1, 1)","(32, 1, 1)","1500"']
        self.assertEqual(kernel_times.read_kernels(lines), [("k", "(1, 1, 1)", "(32, 1, 1)", 1.5)])

    def test_refuses_a_csv_without_the_metric(self):
        with self.assertRaisesRegex(ValueError, "not ncu --csv --page raw output"):
            kernel_times.read_kernels(['"ID","Kernel Name"', '"0","k"'])


if __name__ == "__main__":
    unittest.main()
