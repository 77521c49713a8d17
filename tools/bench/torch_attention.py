#!/usr/bin/env python3
"""PyTorch's fused attention kernels on the attention shapes a dLLM runs, for comparing dlm's own kernel.

  python3 tools/bench/torch_attention.py [--repeat 50]

Shapes (LLaDA-8B: 32 heads of 128, bf16): a full-recompute step (384 queries against the same 384 keys,
bidirectional) at batch 1 and 32, a dual-cache block step (32 queries against 384 keys), and an AR decode step
(1 query against 384 keys, causal by construction). For each SDPA backend that takes the shape (flash,
cuDNN, memory-efficient): the median time in microseconds over --repeat calls after warm-up (CUDA events) and
the rate in TFLOP/s counting 4 * q * k * head_dim FLOP per head. One JSON line per (shape, backend).
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEADS, HEAD_DIM = 32, 128
SHAPES = [  # name, batch, queries, keys
    ("full_step_b1", 1, 384, 384),
    ("full_step_b32", 32, 384, 384),
    ("dual_cache_block_b1", 1, 32, 384),
    ("dual_cache_block_b32", 32, 32, 384),
    ("ar_decode_b1", 1, 1, 384),
    ("ar_decode_b32", 32, 1, 384),
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name, batch, queries, keys in SHAPES:
        q = torch.randn(batch, HEADS, queries, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, HEADS, keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, HEADS, keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        flop = 4.0 * batch * HEADS * queries * keys * HEAD_DIM
        for backend, kind in BACKENDS.items():
            row = {"shape": name, "batch": batch, "queries": queries, "keys": keys, "backend": backend}
            try:
                with sdpa_kernel(kind):
                    us = time_us(lambda: F.scaled_dot_product_attention(q, k, v), args.repeat)
                row.update(us=round(us, 2), tflops=round(flop / us / 1e6, 1))
            except RuntimeError as error:  # the backend refuses the shape or the machine
                row["error"] = str(error).splitlines()[0][:160]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
