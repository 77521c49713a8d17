#!/usr/bin/env python3
"""The PyTorch reference of one LLaDA denoising step, timed on the GPU: transformers' LlamaForCausalLM with
LLaDA-8B's shapes and an all-zero 4-D mask (bidirectional attention, LLaDA's forward), bf16, SDPA attention,
followed by what LLaDA's generate() does with the logits at temperature 0 (softmax over the vocabulary,
argmax, the confidence of the argmax, the top-k of the masked positions).

  python3 tools/bench/torch_llada_step.py --batch 1 32 --prompt 128 --gen 256 [--repeat 20]

Prints one JSON line per batch size: the median step time in ms over --repeat steps after --warmup. The weights are random
(timing does not depend on their values); the shapes are LLaDA-8B-Instruct's.
"""
import argparse
import json
import statistics

import torch
from transformers import LlamaConfig, LlamaForCausalLM

LLADA_8B = dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=32, vocab_size=126464, max_position_embeddings=4096, rope_theta=500000.0,
                rms_norm_eps=1e-5, tie_word_embeddings=False)
MASK_ID = 126336


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = LlamaConfig(**LLADA_8B, attn_implementation="sdpa")
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    length = args.prompt + args.gen
    for batch in args.batch:
        print(json.dumps(time_step(model, batch, args.prompt, length, args.warmup, args.repeat)), flush=True)


def time_step(model, batch, prompt, length, warmup, repeat):
    x = torch.randint(0, MASK_ID, (batch, length), device="cuda")
    x[:, prompt:] = MASK_ID
    mask = torch.zeros(batch, 1, length, length, dtype=torch.bfloat16, device="cuda")

    @torch.no_grad()
    def step():
        logits = model(x, attention_mask=mask).logits
        probabilities = torch.softmax(logits.float(), dim=-1)
        x0 = torch.argmax(logits, dim=-1)
        confidence = torch.gather(probabilities, -1, x0.unsqueeze(-1)).squeeze(-1)
        confidence = torch.where(x == MASK_ID, confidence, -torch.inf)
        return torch.topk(confidence, k=1, dim=-1).indices

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return {"reference": "transformers LlamaForCausalLM, sdpa, bf16", "batch": batch, "tokens": length,
            "step_ms_median": round(statistics.median(times), 3), "step_ms_min": round(min(times), 3),
            "torch": torch.__version__}


if __name__ == "__main__":
    main()
