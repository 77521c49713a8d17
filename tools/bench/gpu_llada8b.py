#!/usr/bin/env python3
"""Helper of tools/bench/gpu_llada8b.sh (standard library only).

  gpu_llada8b.py items RUN OUT.jsonl [--llada-b32]   the prompt items of one dlm generate run
  gpu_llada8b.py summary OUT_DIR                      OUT_DIR/summary.md from the raw outputs there

dlm side. One `dlm generate` process per model and batch size (RUNS below) decodes groups of items; the items
of a group share their settings (per-item keys over the command line's), and dlm decodes a group's items
together (--batch-size) and the groups one after another, in the file's order. Every item's prompt is
PROMPT random token ids (no BOS: prompt_ids are taken as they are). At --batch-size 1 a group's items run one
after another and a group's time is the median of its records' `seconds`; at --batch-size 32 a group is
one batch of 32 and its time is the largest `seconds` (all start together). A record's `timings.denoise` is
the time inside the forwards it took part in (the backbone's forward over all rows of the batch, plus the
copy of the logits of the block's masked positions to the host); `seconds - denoise` is the sampler's
work on the host.

Reference side: tools/bench/torch_reference.py's JSON lines.
"""
import json
import os
import random
import statistics
import sys
from pathlib import Path

PROMPT, GEN, BLOCK = 128, 256, 32
DUAL_STEPS = GEN // 2  # Fast-dLLM with two tokens a step
# (batch size, model, [(group, items, per-item settings)])
RUNS = {
    "llada_b1": (1, "llada", [
        ("warm_none", 1, {"steps": 8}),
        ("warm_dual", 1, {"cache": "dual", "steps": 16}),
        ("step", 2, {"steps": 32}),
        ("dual8", 2, {"cache": "dual", "steps": 8}),
        ("dual128", 2, {"cache": "dual", "steps": DUAL_STEPS}),
        ("llada", 1, {"steps": GEN}),
    ]),
    "llada_b32": (32, "llada", [
        ("warm_none", 32, {"gen_length": 64, "steps": 2}),
        ("warm_dual", 32, {"gen_length": 64, "cache": "dual", "steps": 4}),
        ("step", 32, {"steps": 16}),
        ("dual8", 32, {"cache": "dual", "steps": 8}),
        ("dual128", 32, {"cache": "dual", "steps": DUAL_STEPS}),
        ("llada", 32, {"steps": GEN}),  # only with --llada-b32 (LLADA_B32=1, the default)
    ]),
    "ar_b1": (1, "ar", [("warm", 1, {"gen_length": 16}), ("ar", 2, {})]),
    "ar_b32": (32, "ar", [("warm", 32, {"gen_length": 16}), ("ar", 32, {})]),
}
PROMPT_IDS = {"llada": (1000, 126000), "ar": (1000, 151000)}  # below each family's special ids


def write_items(run, out, llada_b32):
    if run not in RUNS:
        sys.exit(f"gpu_llada8b.py items: unknown run {run!r}; choose from {', '.join(RUNS)}")
    _, family, groups = RUNS[run]
    rng = random.Random(f"{run}-prompts")
    low, high = PROMPT_IDS[family]
    with open(out, "w") as f:
        for group, count, settings in groups:
            if group == "llada" and run == "llada_b32" and not llada_b32:
                continue
            for i in range(count):
                ids = [rng.randrange(low, high) for _ in range(PROMPT)]
                f.write(json.dumps({"id": f"{group}-{i}", "prompt_ids": ids, **settings}) + "\n")


# ---- summary ----------------------------------------------------------------------------------------------

def read_jsonl(path):
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a partly written last line of a killed run
    return rows


class DlmRun:
    """The records of one dlm generate run, by group."""

    def __init__(self, path, batch):
        self.batch = batch
        self.groups, self.errors = {}, []
        for r in read_jsonl(path):
            if "error" in r:
                self.errors.append(f"{r.get('id')}: {r['error']}")
            else:
                self.groups.setdefault(str(r["id"]).rsplit("-", 1)[0], []).append(r)

    def complete(self, group):
        records = self.groups.get(group, [])
        expected = self.batch if self.batch > 1 else 1
        return records if len(records) >= expected else None

    def seconds(self, group):
        """The group's wall time: the batch's at batch > 1, the median request's at batch 1."""
        records = self.complete(group)
        if not records:
            return None
        values = [r["seconds"] for r in records]
        return max(values) if self.batch > 1 else statistics.median(values)

    def forward(self, group):
        """Time inside the forwards of one request of the group (each forward counts in full for every request
        it serves)."""
        records = self.complete(group)
        if not records:
            return None
        return statistics.median(r["timings"]["denoise"] + r["timings"]["prefill"] for r in records)

    def nfe(self, group):
        records = self.complete(group)
        return records[0]["nfe"] if records else None


def reference(rows, measurement, batch):
    for r in rows:
        if r.get("measurement") == measurement and r.get("batch") == batch:
            return r
    return None


def fmt(value, unit):
    if value is None:
        return "—"
    return f"{value:,.1f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"


def per(total, count, scale=1.0):
    """scale * total / count, or None when either is missing."""
    return None if total is None or not count else scale * total / count


def difference(a, b):
    return None if a is None or b is None else a - b


class Summary:
    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.rows, self.notes = [], []
        self.llada_ref = read_jsonl(self.out_dir / "torch_llada.jsonl")
        self.ar_ref = read_jsonl(self.out_dir / "torch_ar.jsonl")

    def ref(self, rows, measurement, batch, key):
        r = reference(rows, measurement, batch)
        if r is None:
            return None
        if "error" in r:
            self.notes.append(f"reference {measurement} b{batch}: {r['error']}")
            return None
        return r.get(key)

    def add(self, row, what, batch, dlm, ref, unit, higher_is_better, ref_label=""):
        ratio = None
        if dlm and ref:
            ratio = dlm / ref if higher_is_better else ref / dlm
        self.rows.append((row, what, batch, fmt(dlm, unit), fmt(ref, unit) + (ref_label if ref else ""),
                          "—" if ratio is None else f"{ratio:.2f}x"))

    def llada_rows(self, batch):
        run = DlmRun(self.out_dir / f"dlm_llada_b{batch}.jsonl", batch)
        self.notes += [f"dlm llada b{batch}: {e}" for e in run.errors[:3]]
        ref = self.llada_ref
        # (a) a request's wall time (or its forwards' time) over its forwards.
        n = run.nfe("step")
        self.add("a", "full-recompute step, whole (ms)", batch, per(run.seconds("step"), n, 1e3),
                 self.ref(ref, "step", batch, "step_ms"), "ms", False)
        self.add("a", "full-recompute step, forward only (ms)", batch, per(run.forward("step"), n, 1e3),
                 self.ref(ref, "step", batch, "forward_ms"), "ms", False)
        # (b) 128 dual-cache steps less 8 (both have the 8 refresh forwards): the 120 block steps.
        block_steps = difference(run.nfe("dual128"), run.nfe("dual8"))
        self.add("b", "dual-cache block step, whole (ms)", batch,
                 per(difference(run.seconds("dual128"), run.seconds("dual8")), block_steps, 1e3),
                 self.ref(ref, "dual-step", batch, "block_step_ms"), "ms", False)
        self.add("b", "dual-cache block step, forward only (ms)", batch,
                 per(difference(run.forward("dual128"), run.forward("dual8")), block_steps, 1e3),
                 self.ref(ref, "dual-step", batch, "block_forward_ms"), "ms", False)
        # (c) end to end: batch * GEN tokens over the group's wall time.
        self.add("c", f"LLaDA e2e: {GEN} steps, 1 token/step, full recompute (tok/s)", batch,
                 per(batch * GEN, run.seconds("llada")), self.ref(ref, "llada", batch, "tokens_per_s"), "tok/s",
                 True)
        self.add("c", f"Fast-dLLM e2e: dual cache, {DUAL_STEPS} steps, 2 tokens/step (tok/s)", batch,
                 per(batch * GEN, run.seconds("dual128")), self.ref(ref, "fast-dllm", batch, "tokens_per_s"),
                 "tok/s", True)

    def ar_rows(self, batch):
        run = DlmRun(self.out_dir / f"dlm_ar_b{batch}.jsonl", batch)
        self.notes += [f"dlm ar b{batch}: {e}" for e in run.errors[:3]]
        candidates = [(self.ref(self.ar_ref, m, batch, "tokens_per_s"), label)
                      for m, label in (("ar", " (loop)"), ("ar-generate", " (generate)"))]
        best, label = max(((v, k) for v, k in candidates if v is not None), default=(None, ""))
        self.add("d", f"Qwen2.5-7B AR: greedy, {GEN} tokens, KV cache (tok/s)", batch,
                 per(batch * GEN, run.seconds("ar")), best, "tok/s", True, label)

    def write(self):
        for batch in (1, 32):
            self.llada_rows(batch)
        for batch in (1, 32):
            self.ar_rows(batch)
        items = self.out_dir / "dlm_llada_b32.items.jsonl"
        if items.is_file() and '"llada-0"' not in items.read_text():
            self.notes.append("LLaDA e2e at batch 32 left out on both sides (LLADA_B32=0)")
        everything = self.llada_ref + self.ar_ref
        device = next((r["device"] for r in everything if r.get("device")), "the GPU")
        ref_name = next((r["reference"] for r in everything if r.get("reference")), "?")
        lines = [
            f"## dlm vs the PyTorch reference: LLaDA-8B and Qwen2.5-7B shapes, bf16, {device}",
            "",
            f"Reference: {ref_name}. Prompt {PROMPT} tokens, generation (canvas) {GEN}, block {BLOCK}. "
            "ratio: dlm's speed over the reference's (reference ms / dlm ms, or dlm tok/s / reference tok/s); "
            "above 1 dlm is faster. — : not measured (skipped, failed or timed out: see the notes and the raw "
            "files beside this one). tools/bench/gpu_llada8b.sh says what each row measures.",
            "",
        ]
        if os.environ.get("DLM_FLAGS"):
            lines += [f"Every dlm run had the flags `{os.environ['DLM_FLAGS']}`.", ""]
        lines += [
            "| row | measurement | batch | dlm | reference | ratio |",
            "|---|---|---:|---:|---:|---:|",
        ]
        order = {}  # rows by letter, then measurement (in the order added), then batch
        for r, w, *_ in self.rows:
            order.setdefault((r, w), len(order))
        rows = sorted(self.rows, key=lambda row: (row[0], order[row[0], row[1]], row[2]))
        lines += [f"| {r} | {w} | {b} | {d} | {f} | {x} |" for r, w, b, d, f, x in rows]
        steps = self.out_dir / "steps.tsv"
        if steps.is_file():
            table = [line.split("\t") for line in steps.read_text().splitlines() if line.count("\t") == 2]
            lines += ["", "Steps (name, exit status, seconds): " + "; ".join(" ".join(t) for t in table)]
            self.notes += [f"step {name}: {'timed out' if rc == '124' else 'exit ' + rc}, see {name}.log"
                           for name, rc, _ in table if rc not in ("0", "skipped", "unselected")]
            self.notes += [f"step {name}: skipped, no time left in BUDGET_S" for name, rc, _ in table
                           if rc == "skipped"]
            unselected = [name for name, rc, _ in table if rc == "unselected"]
            if unselected:
                self.notes.append(f"not in STEPS, so not run: {', '.join(unselected)}")
        if self.notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        text = "\n".join(lines) + "\n"
        (self.out_dir / "summary.md").write_text(text)
        print(text, end="")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "items":
        write_items(sys.argv[2], sys.argv[3], "--llada-b32" in sys.argv[4:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        Summary(sys.argv[2]).write()
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
