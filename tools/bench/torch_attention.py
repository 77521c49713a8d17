#!/usr/bin/env python3
"""PyTorch's fused attention kernels on the attention shapes a dLLM runs, for comparing dlm's own kernel.

  python3 tools/bench/torch_attention.py [--repeat 50]

Shapes (LLaDA-8B: 32 heads of 128, bf16): a full-recompute step (384 queries against the same 384 keys,
bidirectional) at batch 1 and 32, a dual-cache block step (32 queries against 384 keys), an AR decode step
(1 query against 384 keys, causal by construction), an AR prefill (128 queries, causal: is_causal) and a
block-diffusion step (384 queries and keys, block-causal with blocks of 32, as SDAR and BD3-LM see them: a
boolean mask, which flash attention does not take). For each SDPA backend that takes the shape (flash,
cuDNN, memory-efficient): the median time in microseconds over --repeat calls after warm-up (CUDA events) and
the rate in TFLOP/s counting 4 * head_dim FLOP per visible (query, key) pair and head. One JSON line per
(shape, backend).
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEADS, HEAD_DIM = 32, 128
BLOCK = 32
SHAPES = [  # name, batch, queries, keys, visibility
    ("full_step_b1", 1, 384, 384, "bidirectional"),
    ("full_step_b32", 32, 384, 384, "bidirectional"),
    ("dual_cache_block_b1", 1, 32, 384, "bidirectional"),
    ("dual_cache_block_b32", 32, 32, 384, "bidirectional"),
    ("ar_decode_b1", 1, 1, 384, "bidirectional"),
    ("ar_decode_b32", 32, 1, 384, "bidirectional"),
    ("ar_prefill_b1", 1, 128, 128, "causal"),
    ("ar_prefill_b32", 32, 128, 128, "causal"),
    ("block_causal_b1", 1, 384, 384, "block_causal"),
    ("block_causal_b32", 32, 384, 384, "block_causal"),
]
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def time_us(fn, repeat):
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000.0)
    return statistics.median(times)


def visible_pairs(queries, keys, visibility):
    """The (query, key) pairs a visibility rule lets through, for the FLOP count."""
    if visibility == "bidirectional":
        return queries * keys
    if visibility == "causal":
        return queries * (queries + 1) // 2
    blocks = queries // BLOCK
    return BLOCK * BLOCK * blocks * (blocks + 1) // 2


def block_causal_mask(queries):
    """True where a query's block is at or after the key's block."""
    block = torch.arange(queries, device="cuda") // BLOCK
    return block[:, None] >= block[None, :]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name, batch, queries, keys, visibility in SHAPES:
        q = torch.randn(batch, HEADS, queries, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, HEADS, keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, HEADS, keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        flop = 4.0 * batch * HEADS * visible_pairs(queries, keys, visibility) * HEAD_DIM
        mask = block_causal_mask(queries) if visibility == "block_causal" else None
        causal = visibility == "causal"
        for backend, kind in BACKENDS.items():
            row = {"shape": name, "batch": batch, "queries": queries, "keys": keys, "visibility": visibility,
                   "backend": backend}
            try:
                with sdpa_kernel(kind):
                    us = time_us(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal),
                                 args.repeat)
                row.update(us=round(us, 2), tflops=round(flop / us / 1e6, 1))
            except RuntimeError as error:  # the backend refuses the shape or the machine
                row["error"] = str(error).splitlines()[0][:160]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
