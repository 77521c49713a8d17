#!/usr/bin/env python3
"""Times the PyTorch reference (transformers, bf16, SDPA, one GPU) on the checkpoint directory dlm is timed on.

  python3 tools/bench/torch_reference.py CKPT MEASUREMENT[:B1,B2..] ... [--batch 1 32] [--repeat 10] [--runs 1]

CKPT: a model directory written by tools/checkpoints/make_random_checkpoint.py (or a real one): --family
llada-8b for the LLaDA measurements, --family qwen2.5-7b for the AR ones. Each MEASUREMENT runs at the batch
sizes after its colon, else at --batch. Prompts are --prompt random ids below --prompt-vocab.

  step        (a) a full-recompute LLaDA step on the --prompt + --gen canvas: forward_ms (the forward, logits
              of every position) and step_ms (forward + LLaDA's temperature-0 commit: argmax, softmax,
              confidence, top-k); medians of --repeat after --warmup.
  dual-step   (b) a Fast-dLLM dual-cache step: the first block's --block positions against the cached K/V of
              the others, after a refresh forward: block_forward_ms and block_step_ms (with the commit), and
              refresh_ms (the full forward that fills the cache).
  llada       (c) LLaDA's generate(): --gen tokens in blocks of --block, --steps (default --gen: one token a
              step), a full forward every step. tokens_per_s = batch * gen / seconds.
  fast-dllm   (c) Fast-dLLM's dual cache with --dual-steps steps (default --gen/2: two tokens a step): per
              block a refresh forward, then the block's positions alone against the cache.
  ar          (d) greedy AR decoding of --gen tokens after a --prompt-token prompt, a manual loop over
              transformers' DynamicCache (prefill with the LM head on the last position only).
  ar-generate (d) the same with transformers' generate() (min_new_tokens = max_new_tokens = --gen).
              Both keep SDPA off cuDNN, which builds a graph per new key length (torch_decoding.py).

End-to-end measurements take the median of --runs timed runs after a warm-up that decodes one block (LLaDA,
Fast-dLLM) or 8 tokens (AR). Every time is CUDA events around GPU work queued from Python, in ms or s.
Prints one JSON line per measurement and batch size on stdout (progress on stderr); a measurement that fails
prints {"measurement", "batch", "error"} and the others go on; exit 1 then, 2 on bad input.
"""
import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import transformers  # noqa: E402

import torch_checkpoints as checkpoints  # noqa: E402
import torch_decoding as decoding  # noqa: E402

LLADA_MEASUREMENTS = ("step", "dual-step", "llada", "fast-dllm")
AR_MEASUREMENTS = ("ar", "ar-generate")


def log(message):
    print(f"[torch_reference {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cuda_ms(fn):
    """fn() timed with CUDA events, in ms; returns (ms, fn's value)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    value = fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end), value


def median_ms(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = [cuda_ms(fn)[0] for _ in range(repeat)]
    return round(statistics.median(times), 3), round(min(times), 3)


class Bench:
    def __init__(self, args, model, config):
        self.args, self.model, self.config = args, model, config
        self.generator = torch.Generator(device="cuda").manual_seed(args.seed)

    def prompt(self, batch):
        return torch.randint(1000, self.args.prompt_vocab, (batch, self.args.prompt), device="cuda",
                             generator=self.generator)

    # (a)
    def step(self, batch):
        a = self.args
        mask_id = checkpoints.llada_mask_id(self.config)
        x = decoding.canvas(self.prompt(batch), a.gen, mask_id)
        mask = decoding.full_mask(batch, x.shape[1], x.shape[1])
        block_end = a.prompt + a.block
        k = decoding.split_evenly(a.block, a.steps // (a.gen // a.block))[0]
        forward = median_ms(lambda: decoding.llada_forward(self.model, x, mask), a.warmup, a.repeat)
        step = median_ms(lambda: decoding.llada_step(self.model, x, mask, block_end, k, mask_id), a.warmup,
                         a.repeat)
        return {"tokens": x.shape[1], "forward_ms": forward[0], "forward_ms_min": forward[1],
                "step_ms": step[0], "step_ms_min": step[1]}

    # (b)
    def dual_step(self, batch):
        a = self.args
        mask_id = checkpoints.llada_mask_id(self.config)
        x = decoding.canvas(self.prompt(batch), a.gen, mask_id)
        length = x.shape[1]
        start, end = a.prompt, a.prompt + a.block
        full, block = decoding.full_mask(batch, length, length), decoding.full_mask(batch, a.block, length)
        cache = decoding.DualCache()
        refresh = median_ms(lambda: decoding.dual_refresh(self.model, x, cache, full), a.warmup, a.repeat)
        k = decoding.split_evenly(a.block, a.dual_steps // (a.gen // a.block))[1]

        def block_step():
            logits = decoding.dual_block_forward(self.model, x, cache, start, end, block)
            return decoding.commit(logits, x[:, start:end], x[:, start:end] == mask_id, k)

        forward = median_ms(lambda: decoding.dual_block_forward(self.model, x, cache, start, end, block),
                            a.warmup, a.repeat)
        step = median_ms(block_step, a.warmup, a.repeat)
        return {"tokens": length, "block": a.block, "refresh_ms": refresh[0],
                "block_forward_ms": forward[0], "block_forward_ms_min": forward[1],
                "block_step_ms": step[0], "block_step_ms_min": step[1]}

    # (c)
    def end_to_end(self, batch, generate, steps, warmup_units, check):
        a = self.args
        generate(self.prompt(batch), warmup_units)
        torch.cuda.synchronize()
        runs = []
        for _ in range(a.runs):
            prompt = self.prompt(batch)
            ms, (out, forwards) = cuda_ms(lambda: generate(prompt, None))
            runs.append(ms / 1e3)
            check(out)
        seconds = statistics.median(runs)
        result = {"gen": a.gen, "seconds": round(seconds, 4), "tokens_per_s": round(batch * a.gen / seconds, 2),
                  "runs": a.runs, "seconds_all": [round(s, 4) for s in runs], "forwards": forwards}
        if steps:
            result.update(steps=steps, block=a.block, ms_per_forward=round(1e3 * seconds / forwards, 3))
        return result

    def diffusion(self, batch, generate, steps):
        a = self.args
        mask_id = checkpoints.llada_mask_id(self.config)

        def check(x):
            if bool((x == mask_id).any()):
                raise RuntimeError("masked positions left after the last step")

        return self.end_to_end(
            batch, lambda prompt, blocks: generate(self.model, prompt, a.gen, a.block, steps, mask_id, blocks),
            steps, 1, check)

    def llada(self, batch):
        return self.diffusion(batch, decoding.llada_generate, self.args.steps)

    def fast_dllm(self, batch):
        return self.diffusion(batch, decoding.fast_dllm_generate, self.args.dual_steps)

    def ar(self, batch, generate):
        a = self.args

        def run(prompt, tokens):
            out = generate(self.model, prompt, tokens or a.gen)
            return out, out.shape[1]

        def check(out):
            if out.shape != (batch, a.gen):
                raise RuntimeError(f"generated {tuple(out.shape)}, expected {(batch, a.gen)}")

        return self.end_to_end(batch, run, 0, 8, check)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("checkpoint", type=Path, help="model directory (config.json + safetensors)")
    parser.add_argument("measurements", nargs="+", metavar="MEASUREMENT[:B,..]")
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens")
    parser.add_argument("--gen", type=int, default=256, help="generated tokens (the canvas beyond the prompt)")
    parser.add_argument("--block", type=int, default=32, help="LLaDA / Fast-dLLM block length")
    parser.add_argument("--steps", type=int, help="LLaDA steps in all (default --gen)")
    parser.add_argument("--dual-steps", type=int, help="Fast-dLLM steps in all (default --gen / 2)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before a step measurement")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls of a step measurement")
    parser.add_argument("--runs", type=int, default=1, help="timed runs of an end-to-end measurement")
    parser.add_argument("--prompt-vocab", type=int, help="prompt ids are in [1000, this) (default: the "
                        "checkpoint's vocabulary less 1000, below LLaDA's special ids)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.steps = args.steps or args.gen
    args.dual_steps = args.dual_steps or args.gen // 2
    plan = []
    for item in args.measurements:
        name, _, batches = item.partition(":")
        if name not in LLADA_MEASUREMENTS + AR_MEASUREMENTS:
            known = ", ".join(LLADA_MEASUREMENTS + AR_MEASUREMENTS)
            parser.error(f"measurement {item!r}: unknown; choose from {known}")
        try:
            sizes = [int(b) for b in batches.split(",")] if batches else args.batch
        except ValueError:
            parser.error(f"measurement {item!r}: batch sizes must be integers, e.g. {name}:1,32")
        plan += [(name, b) for b in sizes]
    if any(b < 1 for _, b in plan):
        parser.error("batch sizes must be at least 1")
    for flag in ("prompt", "gen", "block", "steps", "dual_steps", "repeat", "runs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.gen % args.block:
        parser.error(f"--block {args.block} must divide --gen {args.gen}")
    blocks = args.gen // args.block
    for flag in ("steps", "dual_steps"):
        value = getattr(args, flag)
        if value % blocks or value // blocks > args.block:
            parser.error(f"--{flag.replace('_', '-')} {value} must be a multiple of the {blocks} blocks, at most "
                         f"{args.block} per block")
    if args.dual_steps // blocks < 2 and any(n == "dual-step" for n, _ in plan):
        parser.error("dual-step needs at least 2 --dual-steps per block (the refresh takes the first)")
    args.plan = plan
    return args


def main():
    args = parse_args()
    try:
        config = checkpoints.read_config(args.checkpoint)
        kinds = {n in LLADA_MEASUREMENTS for n, _ in args.plan}
        if kinds == {True, False}:
            raise checkpoints.CheckpointError("mix of LLaDA and AR measurements: they need different checkpoints")
        if checkpoints.is_llada(config) != (True in kinds):
            wanted = "a LLaDA (model_type llada)" if True in kinds else "an autoregressive"
            raise checkpoints.CheckpointError(f"{args.checkpoint}: {', '.join(sorted({n for n, _ in args.plan}))} "
                                              f"need(s) {wanted} checkpoint; its model_type is "
                                              f"{config.get('model_type')!r}")
        if not torch.cuda.is_available():
            raise checkpoints.CheckpointError("no CUDA device: the reference runs on the GPU")
        vocab = config.get("embedding_size") or config.get("vocab_size")
        if args.prompt_vocab is None:  # LLaDA's special ids start at 126080; Qwen's at 151643
            args.prompt_vocab = min(vocab, 126000) if checkpoints.is_llada(config) else min(vocab, 151000)
        if not 1000 < args.prompt_vocab <= vocab:
            raise checkpoints.CheckpointError(f"--prompt-vocab {args.prompt_vocab}: must be in (1000, {vocab}]")
        started = time.time()
        log(f"loading {args.checkpoint}")
        load = checkpoints.load_llada_as_llama if checkpoints.is_llada(config) else checkpoints.load_causal_lm
        model, config = load(args.checkpoint)
        load_seconds = time.time() - started
        log(f"loaded in {load_seconds:.1f} s")
    except checkpoints.CheckpointError as error:
        sys.exit(f"torch_reference: {error}")
    bench = Bench(args, model, config)
    run = {"step": bench.step, "dual-step": bench.dual_step, "llada": bench.llada, "fast-dllm": bench.fast_dllm,
           "ar": lambda b: bench.ar(b, decoding.ar_generate_loop),
           "ar-generate": lambda b: bench.ar(b, decoding.ar_generate_hf)}
    common = {"checkpoint": str(args.checkpoint), "prompt": args.prompt,
              "reference": f"transformers {transformers.__version__} {type(model).__name__}, sdpa, bf16, "
                           f"torch {torch.__version__}",
              "device": torch.cuda.get_device_name(0), "load_s": round(load_seconds, 1)}
    failed = 0
    for name, batch in args.plan:
        log(f"{name} batch {batch}")
        record = {"measurement": name, "batch": batch}
        try:
            with torch.inference_mode():
                record.update(run[name](batch))
        except Exception as error:  # noqa: BLE001 - one failure must not stop the others
            traceback.print_exc()
            record["error"] = f"{type(error).__name__}: {error}"
            failed += 1
            torch.cuda.empty_cache()
        record.update(common)
        print(json.dumps(record), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
