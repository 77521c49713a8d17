#!/usr/bin/env python3
"""Golden data for the attention and vocabulary ops (tests/unit/ops_attention_golden_test.cpp).

Usage: python3 tools/golden/ops_attention.py tests/golden/ops_attention.safetensors
Needs torch (>= 2.1 for the scaled_dot_product_attention cross-check; older versions skip it) and the
`safetensors` package (without it the script computes and checks everything but writes nothing).

Inputs are drawn in float32 from a seeded torch.Generator; references are computed from those float32 values
in float64 and stored as float32. Integer tensors are int32.

File layout (tensor "<case>.<arg>", metadata key "<case>.<key>"):
  metadata "attention_cases", "vocab_cases": comma-separated case names.
  attention case:
    q [Tq,Hq,D], k [Tk,Hkv,D], v [Tk,Hkv,Dv]            inputs, float32
    query_offsets, key_offsets [B+1]                     ragged batch, int32
    query_positions [Tq], key_positions [Tk]             int32
    out [Tq,Hq,Dv]                                       reference, float32
    metadata visibility: bidirectional | causal | block_causal | sliding_window
    metadata block_size, window: integers (0 where unused)
    metadata scale (0 means 1/sqrt(D)), softcap (0 means off): decimal floats, exact in float32
  vocab case:
    logits [N,V] float32
    argmax [N] int32; max_prob, entropy (nats), margin (top-1 minus top-2 probability) [N] float32
    topk_values [N,k] float32, topk_indices [N,k] int32: descending, ties to the lower index

Semantics the references follow (engine/backend/backend.h): query head h reads kv head h // (Hq // Hkv), as
transformers' repeat_kv does; visibility compares positions within a sequence; a query that sees no key gets
zeros (where a plain masked softmax would give NaN).
"""

import math
import sys

import torch
import torch.nn.functional as F

try:
    from safetensors.torch import save_file
except ImportError:  # dry run on a machine without safetensors
    save_file = None

SEED = 20240611
MAX_BYTES = 1 << 20


def visible_mask(kind, block_size, window, query_positions, key_positions):
    qp = query_positions.to(torch.int64)[:, None]
    kp = key_positions.to(torch.int64)[None, :]
    if kind == "bidirectional":
        return torch.ones(qp.shape[0], kp.shape[1], dtype=torch.bool)
    if kind == "causal":
        return kp <= qp
    if kind == "block_causal":
        key_block = torch.div(kp, block_size, rounding_mode="floor")
        return key_block <= torch.div(qp, block_size, rounding_mode="floor")
    if kind == "sliding_window":
        return (kp <= qp) & (qp - kp < window)
    raise ValueError(kind)


def eager_attention(q, k, v, mask, scale, softcap):
    """HF eager attention for one sequence in float64: q [Tq,Hq,D], k [Tk,Hkv,D], v [Tk,Hkv,Dv]."""
    group = q.shape[1] // k.shape[1]
    qh = q.transpose(0, 1)  # [Hq,Tq,D]
    kh = k.repeat_interleave(group, dim=1).transpose(0, 1)
    vh = v.repeat_interleave(group, dim=1).transpose(0, 1)
    scores = qh @ kh.transpose(1, 2) * scale
    if softcap > 0:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~mask[None], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    probs = torch.where(mask.any(dim=-1)[None, :, None], probs, torch.zeros_like(probs))
    return (probs @ vh).transpose(0, 1)  # [Tq,Hq,Dv]


def sdpa_cross_check(q, k, v, mask, scale, out):
    """Where torch's fused attention applies (no softcap, every query sees a key), it must agree."""
    if not hasattr(F, "scaled_dot_product_attention") or not bool(mask.any(dim=-1).all()):
        return False
    group = q.shape[1] // k.shape[1]
    qh = q.transpose(0, 1)[None]
    kh = k.repeat_interleave(group, dim=1).transpose(0, 1)[None]
    vh = v.repeat_interleave(group, dim=1).transpose(0, 1)[None]
    try:
        fused = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale)
    except TypeError:  # torch 2.0 has no `scale`
        return False
    error = (fused[0].transpose(0, 1) - out).abs().max().item()
    assert error < 1e-10, f"SDPA disagrees with eager attention by {error}"
    return True


class Golden:
    def __init__(self):
        self.generator = torch.Generator().manual_seed(SEED)
        self.tensors = {}
        self.metadata = {}
        self.attention_cases = []
        self.vocab_cases = []
        self.sdpa_checked = 0

    def randn(self, *shape, scale=1.0):
        return torch.randn(*shape, generator=self.generator, dtype=torch.float32) * scale

    def add(self, name, tensor):
        assert name not in self.tensors, name
        self.tensors[name] = tensor.contiguous()

    def attention(self, case, heads, head_dim, value_dim, sequences, kind="causal", block_size=0, window=0,
                  scale=0.0, softcap=0.0, spread=1.0):
        """sequences: per sequence (query_positions, key_positions)."""
        hq, hkv = heads
        query_positions = [p for qp, _ in sequences for p in qp]
        key_positions = [p for _, kp in sequences for p in kp]
        query_offsets, key_offsets = [0], [0]
        for qp, kp in sequences:
            query_offsets.append(query_offsets[-1] + len(qp))
            key_offsets.append(key_offsets[-1] + len(kp))
        tq, tk = len(query_positions), len(key_positions)
        q = self.randn(tq, hq, head_dim, scale=spread)
        k = self.randn(tk, hkv, head_dim, scale=spread)
        v = self.randn(tk, hkv, value_dim)
        qp = torch.tensor(query_positions, dtype=torch.int32)
        kp = torch.tensor(key_positions, dtype=torch.int32)
        effective_scale = scale if scale != 0 else 1.0 / math.sqrt(head_dim)

        out = torch.zeros(tq, hq, value_dim, dtype=torch.float64)
        for b in range(len(sequences)):
            qs = slice(query_offsets[b], query_offsets[b + 1])
            ks = slice(key_offsets[b], key_offsets[b + 1])
            mask = visible_mask(kind, block_size, window, qp[qs], kp[ks])
            q64, k64, v64 = q[qs].double(), k[ks].double(), v[ks].double()
            out[qs] = eager_attention(q64, k64, v64, mask, effective_scale, softcap)
            if softcap == 0 and sdpa_cross_check(q64, k64, v64, mask, effective_scale, out[qs]):
                self.sdpa_checked += 1

        for arg, tensor in [("q", q), ("k", k), ("v", v),
                            ("query_offsets", torch.tensor(query_offsets, dtype=torch.int32)),
                            ("key_offsets", torch.tensor(key_offsets, dtype=torch.int32)),
                            ("query_positions", qp), ("key_positions", kp), ("out", out.float())]:
            self.add(f"{case}.{arg}", tensor)
        for key, value in [("visibility", kind), ("block_size", block_size), ("window", window),
                           ("scale", scale), ("softcap", softcap)]:
            self.metadata[f"{case}.{key}"] = repr(value) if isinstance(value, float) else str(value)
            if isinstance(value, float):
                exact = float(torch.tensor(value, dtype=torch.float32)) == value
                assert exact, f"{case}.{key} is not exact in float32"
        self.attention_cases.append(case)

    def vocab(self, case, logits, k):
        n, vocab = logits.shape
        x = logits.double()
        probs = torch.softmax(x, dim=-1)
        argmax = torch.argmax(logits, dim=-1)
        max_prob = probs.max(dim=-1).values
        entropy = -torch.xlogy(probs, probs).sum(dim=-1)
        if vocab > 1:
            top2 = torch.topk(probs, 2, dim=-1).values
            margin = top2[:, 0] - top2[:, 1]
        else:
            margin = torch.ones(n, dtype=torch.float64)
        # Ties go to the lower index: a stable descending sort. torch.topk must give the same values.
        order = torch.sort(logits, dim=-1, descending=True, stable=True).indices[:, :k]
        values = torch.gather(logits, 1, order)
        assert torch.equal(values, torch.topk(logits, k, dim=-1).values)
        assert torch.equal(order[:, 0], argmax)
        for arg, tensor in [("logits", logits), ("argmax", argmax.to(torch.int32)),
                            ("max_prob", max_prob.float()), ("entropy", entropy.float()),
                            ("margin", margin.float()), ("topk_values", values),
                            ("topk_indices", order.to(torch.int32))]:
            self.add(f"{case}.{arg}", tensor)
        self.vocab_cases.append(case)


def build():
    g = Golden()

    def positions(n, start=0):
        return list(range(start, start + n))

    g.attention("bidirectional", (4, 4), 16, 16, [(positions(12), positions(12))], kind="bidirectional")
    g.attention("causal", (4, 4), 16, 16, [(positions(12), positions(12))])
    g.attention("block_causal", (4, 4), 16, 16, [(positions(13), positions(13))], kind="block_causal",
                block_size=4)
    g.attention("sliding_window", (4, 4), 16, 16, [(positions(14), positions(14))], kind="sliding_window",
                window=5)
    g.attention("gqa", (8, 2), 32, 24, [(positions(10), positions(10))])
    g.attention("mqa", (6, 1), 16, 8, [(positions(9), positions(9))], kind="bidirectional")
    # Three sequences: a prefill, one new query over 9 cached keys, a block-diffusion-like canvas.
    g.attention("ragged", (4, 2), 16, 16,
                [(positions(5), positions(5)), ([8], positions(9)), (positions(7), positions(7))])
    # Queries at arbitrary positions (any order) against cached keys.
    g.attention("query_subset", (4, 2), 16, 16, [([35, 3, 20, 39, 0], positions(40))])
    g.attention("softcap", (4, 4), 16, 16, [(positions(11), positions(11))], kind="bidirectional", scale=0.25,
                softcap=5.0, spread=3.0)
    # 150 keys and 70 queries: several key tiles and query groups; shifted positions.
    g.attention("long", (4, 2), 24, 20, [(positions(70, start=80), positions(150))], kind="sliding_window",
                window=100)
    # Query at position 0 against keys at 1..3 under causal visibility sees nothing: zeros.
    g.attention("empty_visibility", (2, 2), 8, 8, [([0, 2], [1, 2, 3])])

    small = g.randn(4, 37, scale=3.0)
    small[1, 30] = small[1, 7] = small[1].max() + 1  # tied maxima: argmax and top-k take index 7 first
    small[2] = 0.5  # uniform: entropy log 37, margin 0
    small[3, :5] = torch.tensor([1e30, -1e30, 0.0, 5e29, 1e30])  # huge logits, a tie at 1e30
    g.vocab("vocab_small", small, 5)
    large = g.randn(3, 50000, scale=4.0)
    large[1] *= 20.0  # peaked: entropy near 0
    large[2] += 1e4  # a shift must not matter
    g.vocab("vocab_large", large, 8)
    g.vocab("vocab_single", g.randn(2, 1), 1)

    g.metadata["attention_cases"] = ",".join(g.attention_cases)
    g.metadata["vocab_cases"] = ",".join(g.vocab_cases)
    return g


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT.safetensors")
    g = build()
    size = sum(t.numel() * t.element_size() for t in g.tensors.values())
    assert size < MAX_BYTES, f"golden data is {size} bytes, over {MAX_BYTES}"
    print(f"torch {torch.__version__}: {len(g.attention_cases)} attention cases ({g.sdpa_checked} sequences "
          f"cross-checked with scaled_dot_product_attention), {len(g.vocab_cases)} vocab cases, {size} bytes")
    if save_file is None:
        print("the safetensors package is missing: nothing written")
        return
    save_file(g.tensors, sys.argv[1], metadata=g.metadata)
    print(f"wrote {sys.argv[1]}")


if __name__ == "__main__":
    main()
