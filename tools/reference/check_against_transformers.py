#!/usr/bin/env python3
"""Cross-check of tools/reference against transformers (written for transformers 5.17, torch 2.11).

Usage: python3 tools/reference/check_against_transformers.py [tests/golden/samplers/cases.json]
  (a) model.py's logits against AutoModelForCausalLM in float64 on tests/golden/parity/models/{llama,qwen2,
      qwen3}: a causal forward and a bidirectional one (an all-zero 4-D additive mask);
  (b) transformers' own greedy generate for every autoregressive case of cases.json against its tokens.
Prints one summary line; exits 1 on any mismatch.
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model as reference_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests/golden/parity/models"


def load(name):
    return AutoModelForCausalLM.from_pretrained(str(MODELS / name), dtype=torch.float64,
                                                attn_implementation="eager").eval()


def logits_error(name, hf):
    """Worst max|ours - theirs| / max(1, max|theirs|) over a causal and a bidirectional forward."""
    ours_model = reference_model.Transformer(MODELS / name)
    ids = (7 * torch.arange(24) + 5) % ours_model.vocab
    positions = torch.arange(len(ids))
    worst = 0.0
    for visible, mask in ((reference_model.causal, None),
                          (reference_model.bidirectional, torch.zeros(1, 1, len(ids), len(ids), dtype=torch.float64))):
        with torch.no_grad():
            theirs = hf(ids[None], attention_mask=mask).logits[0]
        ours = ours_model.forward(ids, positions, visible).logits
        worst = max(worst, float((ours - theirs).abs().max() / max(1.0, float(theirs.abs().max()))))
    return worst


def generate_mismatches(case, hf):
    """Names of the requests where transformers' greedy generate differs from the golden tokens."""
    settings, stop_ids = case["settings"], case["stop_ids"]
    bad = []
    for i, request in enumerate(case["requests"]):
        ids = torch.tensor([request["prompt"]])
        with torch.no_grad():
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=settings["gen_length"],
                              repetition_penalty=settings.get("repetition_penalty", 1.0),
                              eos_token_id=stop_ids, pad_token_id=stop_ids[0])
        if out[0, ids.shape[1]:].tolist() != request["tokens"]:
            bad.append(f"{case['name']}[{i}]")
    return bad


def main():
    cases_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/golden/samplers/cases.json"
    cases = [c for c in json.loads(cases_path.read_text())["cases"] if c["settings"]["method"] == "autoregressive"]
    errors, mismatches = {}, []
    for name in ("llama", "qwen2", "qwen3"):
        hf = load(name)
        errors[name] = logits_error(name, hf)
        for case in cases:
            if case["model"] == name:
                mismatches += generate_mismatches(case, hf)
    bad_logits = [n for n, e in errors.items() if e > reference_model.TOLERANCE]
    requests = sum(len(c["requests"]) for c in cases)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: logits "
          + " ".join(f"{n}={e:.2e}" for n, e in errors.items())
          + f" (tolerance {reference_model.TOLERANCE:.0e}); generate {requests - len(mismatches)}/{requests} requests"
          + f" match{': ' + ', '.join(mismatches) if mismatches else ''}")
    sys.exit(1 if bad_logits or mismatches else 0)


if __name__ == "__main__":
    main()
