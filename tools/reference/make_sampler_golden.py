#!/usr/bin/python3
"""Golden decoding results of every method in tools/reference/SEMANTICS.md on the tiny parity models.

Usage: /usr/bin/python3 tools/reference/make_sampler_golden.py tests/golden/samplers
Writes OUT_DIR/cases.json. Checks tools/reference/model.py against the committed transformers logits first
and aborts when it disagrees. Prompts are drawn per case from a seeded generator; a draw is rejected (and the
next seed tried) when a request would decide something by less than MIN_GAP, would commit the MASK id, or
(Dream, which has no stop rule) would generate a stop id.
"""

import collections
import json
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import torch

import model as reference_model
import samplers
from samplers import Rejected, Settings, Task

ROOT = Path(__file__).resolve().parents[2]
PARITY = ROOT / "tests/golden/parity"
MIN_GAP = 1e-6
ATTEMPTS = 50
VOCAB = 320
CONTEXT = 128

# Format directory -> the base directory whose weights it holds.
BASE = {"llada": "llama", "dream": "qwen2", "fast_dllm_v2": "qwen2", "sdar": "qwen3",
        "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
# Per format: (EOS, [EoT...], MASK) by token text; stop_ids = [EOS] + EoT.
SPECIALS = {
    "llada": ("<|endoftext|>", ["<|eot_id|>"], "<|mdm_mask|>"),
    "dream": ("<|endoftext|>", ["<|im_end|>"], "<|mask|>"),
    "fast_dllm_v2": ("<|im_end|>", ["<|endoftext|>"], "|<MASK>|"),
    "sdar": ("<|im_end|>", ["<|endoftext|>"], "<|MASK|>"),
    "llama": ("<|end_of_text|>", ["<|eot_id|>"], None),
    "qwen2": ("<|endoftext|>", ["<|im_end|>"], None),
    "qwen3": ("<|im_end|>", ["<|endoftext|>"], None),
}
SHIFT = {"dream": 1, "fast_dllm_v2": 1}
ADAPTIVE = ("threshold", "factor", "dynamic", "entropy_bound")
LENGTHS = (5, 9, 14)
BLOCK_LENGTHS = (5, 8, 14)  # 8: a multiple of the block (4 and 8); 5 and 14: not


def case(name, model, lengths=LENGTHS, stops="default", seed=None, **settings):
    """stops: default (the format's EOS/EoT) | emitted (the middle token of the first request's output
    without stops) | frequent2 (the two most frequent generated tokens: EOS and EoT for the llada flags).
    seed: share the prompts of another case."""
    return {"name": name, "model": model, "lengths": lengths, "stops": stops, "seed": seed or name,
            "settings": Settings(**settings)}


def llada(name, model="llada", **kw):
    return case(name, model, method="llada", **kw)


def dream(name, **kw):
    return case(name, "dream", method="dream", **kw)


def blocks(name, model, **kw):
    return case(name, model, BLOCK_LENGTHS, method="block_diffusion", **kw)


def ar(name, model, **kw):
    return case(name, model, method="autoregressive", gen_length=12, **kw)


SEMI_AR = dict(gen_length=24, block_length=8, steps=12)
ONE_PASS = dict(gen_length=24, block_length=8, steps=3)  # adaptive rules: steps only satisfies S % NB == 0
CASES = [
    llada("llada_pure_diffusion", gen_length=16, steps=16, block_length=16),
    llada("llada_semi_ar_schedule", gen_length=24, steps=9, block_length=8),
    llada("llada_cfg", gen_length=16, steps=8, block_length=8, cfg_scale=1.5),
    llada("llada_suppress_eos", stops="frequent2", gen_length=16, steps=16, block_length=8,
          suppress_eos=True, suppress_eos_confidence=True),
    llada("llada_threshold", commit="threshold", threshold=0.05, **ONE_PASS),
    llada("llada_factor", commit="factor", factor=2.85, **ONE_PASS),
    llada("llada_entropy_bound", commit="entropy_bound", entropy_bound=10.3, **ONE_PASS),
    llada("llada_prefix_schedule", cache="prefix", **SEMI_AR),
    llada("llada_prefix_threshold", cache="prefix", commit="threshold", threshold=0.05, **ONE_PASS),
    llada("llada_dual_schedule", cache="dual", **SEMI_AR),
    llada("llada_dual_threshold", cache="dual", commit="threshold", threshold=0.05, **ONE_PASS),
    llada("llada_stop_early", stops="emitted", **SEMI_AR),
    llada("llada_no_stop_early", stops="emitted", seed="llada_stop_early", stop_early=False, **SEMI_AR),
    llada("llada_dream_prefix_shift", model="dream", cache="prefix", **SEMI_AR),
    llada("llada_dream_dual_shift", model="dream", cache="dual", **SEMI_AR),
    dream("dream_low_confidence", gen_length=16, steps=16),
    dream("dream_margin", gen_length=16, steps=8, remasking="margin"),
    dream("dream_entropy", gen_length=16, steps=6, remasking="entropy"),
    dream("dream_entropy_top_p_top_k", gen_length=16, steps=8, remasking="entropy", top_p=0.9, top_k=20),
    dream("dream_threshold", gen_length=16, steps=16, commit="threshold", threshold=0.15),
    blocks("sdar_schedule_steps4", "sdar", gen_length=16, block_length=4, steps=4),
    blocks("sdar_schedule_steps2", "sdar", gen_length=16, block_length=4, steps=2),
    blocks("sdar_dynamic", "sdar", gen_length=16, block_length=4, steps=4, commit="dynamic", threshold=0.05),
    blocks("sdar_entropy_bound", "sdar", gen_length=16, block_length=4, steps=4, commit="entropy_bound",
           entropy_bound=10.3),
    blocks("sdar_stop_early", "sdar", stops="emitted", gen_length=16, block_length=4, steps=2),
    blocks("fast_dllm_v2_threshold_sub_blocks", "fast_dllm_v2", gen_length=24, block_length=8,
           sub_block_length=4, steps=4, commit="threshold", threshold=0.05),
    blocks("fast_dllm_v2_schedule", "fast_dllm_v2", gen_length=24, block_length=8, steps=8),
    blocks("fast_dllm_v2_stop_early", "fast_dllm_v2", stops="emitted", gen_length=24, block_length=8,
           sub_block_length=4, steps=2),
] + [c for m in ("llama", "qwen2", "qwen3") for c in (
    ar(f"{m}_ar_greedy", m),
    ar(f"{m}_ar_repetition_penalty", m, repetition_penalty=1.3),
    ar(f"{m}_ar_stop", m, stops="emitted"),
)]


def special_ids(directory):
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    return {t["content"]: t["id"] for t in tokenizer["added_tokens"]}


def format_ids(fmt):
    """(default stop ids, mask id (-1: none), ids a prompt may use) from the format's tokenizer.json."""
    ids = special_ids(PARITY / "models" / fmt)
    eos, eots, mask = SPECIALS[fmt]
    allowed = [i for i in range(VOCAB) if i not in set(ids.values())]
    return [ids[eos]] + [ids[t] for t in eots], ids[mask] if mask else -1, allowed


def draw_prompts(spec, attempt, allowed):
    generator = torch.Generator().manual_seed(zlib.crc32(f"{spec['seed']}/{attempt}".encode()))
    return [[allowed[int(i)] for i in torch.randint(len(allowed), (n,), generator=generator)]
            for n in spec["lengths"]]


def run_all(task, prompts, settings):
    return [samplers.generate(task, prompt, settings) for prompt in prompts]


def most_frequent(results, count):
    tally = collections.Counter(t for r in results for t in r.tokens)
    return sorted(tally, key=lambda t: (-tally[t], t))[:count]


def require_gaps(results):
    small = [r.min_gap for r in results if r.min_gap < MIN_GAP]
    if small:
        raise Rejected(f"min_gap {min(small):.2e}")


def choose_stops(spec, task, prompts):
    """The case's stop ids; emitted/frequent2 come from the run without stops (and without the llada flags)."""
    if spec["stops"] == "default":
        return task.stop_ids
    probe = replace(spec["settings"], stop_early=False, suppress_eos=False, suppress_eos_confidence=False)
    results = run_all(task, prompts, probe)
    require_gaps(results)  # the probe is a case of its own for llada_no_stop_early
    if spec["stops"] == "frequent2":
        return most_frequent(results, 2)
    return [results[0].tokens[len(results[0].tokens) // 2]]


def histogram(results):
    tally = collections.Counter(n for r in results for n in r.committed_per_step)
    return {str(n): tally[n] for n in sorted(tally)}


def check_case(spec, task, prompts, results):
    """The assertions that make each case test what its name says."""
    settings = spec["settings"]
    per_step = histogram(results)
    if settings.commit in ADAPTIVE:
        assert any(int(n) >= 2 for n in per_step) and "1" in per_step, \
            f"{spec['name']}: the rule should commit one token in some steps and several in others: {per_step}"
    if spec["stops"] in ("emitted", "frequent2") and settings.stop_early:
        assert any(set(r.tokens) & set(task.stop_ids) for r in results), f"{spec['name']}: no request stops"
    if settings.suppress_eos or settings.suppress_eos_confidence:
        plain = run_all(task, prompts, replace(settings, suppress_eos=False, suppress_eos_confidence=False))
        assert any(a.tokens != b.tokens for a, b in zip(plain, results)), f"{spec['name']}: flags change nothing"


def attempt_case(spec, attempt, models):
    fmt, settings = spec["model"], spec["settings"]
    stops, mask_id, allowed = format_ids(fmt)
    task = Task(models[BASE[fmt]], mask_id, stops, SHIFT.get(fmt, 0))
    prompts = draw_prompts(spec, attempt, allowed)
    block = settings.block_length or 1
    assert all(-(-(len(p) + settings.gen_length) // block) * block <= CONTEXT for p in prompts)
    task = replace(task, stop_ids=choose_stops(spec, task, prompts))
    results = run_all(task, prompts, settings)
    require_gaps(results)
    if settings.method == "dream" and any(set(r.tokens) & set(task.stop_ids) for r in results):
        raise Rejected("Dream output holds a stop id")
    check_case(spec, task, prompts, results)
    return task, prompts, results


def significant(value):
    return float(f"{value:.3g}")


def make_case(spec, models):
    for attempt in range(ATTEMPTS):
        try:
            task, prompts, results = attempt_case(spec, attempt, models)
            break
        except Rejected as why:
            print(f"  {spec['name']}: seed {attempt} rejected ({why})")
    else:
        raise SystemExit(f"{spec['name']}: no prompts passed in {ATTEMPTS} seeds")
    out = {"name": spec["name"], "model": spec["model"], "settings": spec["settings"].to_json(),
           "mask_id": task.mask_id, "stop_ids": task.stop_ids, "shift": task.shift,
           "requests": [{"prompt": p, "tokens": r.tokens, "nfe": r.nfe, "min_gap": significant(r.min_gap)}
                        for p, r in zip(prompts, results)]}
    if spec["settings"].method != "autoregressive":
        out["committed_per_step"] = histogram(results)
    return out


def main():
    out_dir = Path(sys.argv[1])
    errors = reference_model.self_check(PARITY)
    worst = max(e for cases in errors.values() for e in cases.values())
    print(f"model self-check: worst max|ours - ref| / max(1, max|ref|) = {worst:.2e}")
    if worst > reference_model.TOLERANCE:
        raise SystemExit(f"model.py disagrees with the transformers logits: {errors}")
    models = {base: reference_model.Transformer(PARITY / "models" / base) for base in ("llama", "qwen2", "qwen3")}
    cases = []
    for spec in CASES:
        case_json = make_case(spec, models)
        gaps = " ".join(f"{r['min_gap']:.2e}" for r in case_json["requests"])
        nfe = " ".join(str(r["nfe"]) for r in case_json["requests"])
        print(f"{spec['name']}: min_gap {gaps}; nfe {nfe}; committed/step {case_json.get('committed_per_step', '-')}")
        cases.append(case_json)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"generator": "tools/reference/make_sampler_golden.py", "torch": torch.__version__, "cases": cases}
    (out_dir / "cases.json").write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {out_dir / 'cases.json'}: {len(cases)} cases")


if __name__ == "__main__":
    main()
