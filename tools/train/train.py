#!/usr/bin/env python3
"""Trains dlm's small default models on the dataset of tools/data/build_dataset.py.

  python3 tools/train/train.py --objective diffusion --data DATA --out OUT [--minutes 7]
  python3 tools/train/train.py --objective ar        --data DATA --out OUT [--minutes 7]
  python3 tools/train/train.py --objective block     --data DATA --out OUT --layers 4 [--block-size 4]

Every objective trains on the same mixture: prose packed into fixed-length chunks plus the synthetic tasks.
diffusion and ar train transformers' LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, MHA, tied embeddings), block
its Qwen3ForCausalLM (the same plus per-head q/k RMSNorm), which is SDAR's network.
  diffusion  LLaDA's masked-diffusion objective, bidirectional attention (SDPA without a causal mask):
             prose: every token masked with probability t ~ U(eps, 1), cross-entropy on the masked tokens
             weighted by 1/t, over the chunk's length; tasks: only the answer (then EOS padding) masked, the loss
             over the answer's length, as LLaDA's SFT does.
  ar         next-token prediction, causal attention; prose: every token; tasks: the answer and its EOS.
  block      block diffusion (SDAR, BD3-LM): the sequence is cut into blocks of --block-size from position 0,
             each masked with its own t ~ U(eps, 1) (tasks: only answer and EOS padding positions); a noisy
             block attends to itself and to the clean blocks before it; loss as for diffusion, each token
             weighted by its block's 1/t.
Needs torch, transformers and sentencepiece (the GPU machine has them). Writes OUT/log.jsonl (one record per
evaluation: step, sequences seen, train and held-out losses, seconds) and OUT/model.pt (f32 state dict); export.py
turns that into the Hugging Face layout dlm loads.
"""

import argparse
import json
import math
import random
import time
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F
from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

EPS = 1e-3  # LLaDA's minimum masking probability


def architecture(objective):
    """(config class, model class): SDAR's network, Qwen3, for block diffusion; Llama for the others."""
    return (Qwen3Config, Qwen3ForCausalLM) if objective == "block" else (LlamaConfig, LlamaForCausalLM)


def model_config(vocab, args):
    common = dict(vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                  num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
                  head_dim=args.hidden // args.heads, max_position_embeddings=args.context, rms_norm_eps=1e-5,
                  tie_word_embeddings=True, hidden_act="silu", attention_bias=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if args.objective == "block":
        common["use_sliding_window"] = False
    return architecture(args.objective)[0](**common)


class Data:
    """Tokenized prose chunks and task examples, sampled with a seeded generator."""

    def __init__(self, directory, tokenizer, seq_len, split, seed):
        self.sp = tokenizer
        self.bos, self.eos = tokenizer.bos_id(), tokenizer.eos_id()
        self.seq_len = seq_len
        self.rng = random.Random(seed)
        lines = (Path(directory) / f"prose_{split}.txt").read_text(encoding="utf-8").splitlines()
        stream = []
        for ids in tokenizer.encode(lines):
            stream += [self.bos] + ids + [self.eos]
        chunks = len(stream) // seq_len
        self.prose = torch.tensor(stream[: chunks * seq_len], dtype=torch.int64).view(chunks, seq_len)
        self.tasks = {}
        for line in (Path(directory) / f"tasks_{split}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            self.tasks.setdefault(record["task"], []).append(record)
        self.task_ids = {}
        for task, records in sorted(self.tasks.items()):
            prompts = tokenizer.encode([r["prompt"] for r in records])
            answers = tokenizer.encode([r["answer"] for r in records])
            self.task_ids[task] = [([self.bos] + p, a + [self.eos]) for p, a in zip(prompts, answers)]

    def prose_batch(self, size):
        index = torch.tensor([self.rng.randrange(len(self.prose)) for _ in range(size)])
        return self.prose[index]

    def task_batch(self, size, task=None):
        """(tokens [B, L], answer [B, L], padded answer [B, L]): one task per batch. Answers end with EOS and are
        padded with more EOS to the batch's longest example, so a diffusion model learns to fill the rest of
        its canvas with EOS; `answer` marks the answer and its first EOS, `padded answer` everything after the
        prompt."""
        task = task or self.rng.choice(sorted(self.task_ids))
        examples = [self.rng.choice(self.task_ids[task]) for _ in range(size)]
        length = max(len(p) + len(a) for p, a in examples)
        tokens = torch.full((size, length), self.eos, dtype=torch.int64)
        answer = torch.zeros((size, length), dtype=torch.bool)
        padded = torch.zeros((size, length), dtype=torch.bool)
        for row, (prompt, ans) in enumerate(examples):
            tokens[row, : len(prompt)] = torch.tensor(prompt)
            tokens[row, len(prompt): len(prompt) + len(ans)] = torch.tensor(ans)
            answer[row, len(prompt): len(prompt) + len(ans)] = True
            padded[row, len(prompt):] = True
        return tokens, answer, padded


def bidirectional_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Full attention through SDPA without a mask, so the flash kernel runs (an explicit all-zero mask would
    force a slower one). Query, key and value are [B, H, L, D] with as many KV heads as query heads."""
    out = F.scaled_dot_product_attention(query, key, value, is_causal=False, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register("bidirectional_sdpa", bidirectional_sdpa)


def block_attention_mask(length, block, device):
    """[1, 1, 2L, 2L] bool (True: may attend) for the input [noisy ; clean] of two length-L halves: noisy
    block b sees noisy block b and clean blocks < b; clean block b sees clean blocks <= b. The clean half is
    what the exact K/V cache holds when block b is decoded: finished blocks, computed block-causally."""
    index = torch.arange(length, device=device) // block
    query, key = index[:, None], index[None, :]
    noisy = torch.cat([query == key, key < query], dim=1)
    clean = torch.cat([torch.zeros_like(noisy[:, :length]), key <= query], dim=1)
    return torch.cat([noisy, clean], dim=0)[None, None]


def block_logits(model, noisy, clean, block):
    """The logits of the noisy half of [noisy ; clean] (both [B, L]); both halves take positions 0..L-1."""
    batch, length = noisy.shape
    positions = torch.arange(length, device=noisy.device).repeat(2)[None].expand(batch, -1)
    return model(torch.cat([noisy, clean], dim=1), attention_mask=block_attention_mask(length, block, noisy.device),
                 position_ids=positions, logits_to_keep=torch.arange(length, device=noisy.device)).logits


@torch.no_grad()
def check_attention(model, args, vocab):
    """A mask the attention implementation ignored would train the wrong model. diffusion and ar: the first
    row must see the last token under the diffusion objective's mask and must not under the causal one.
    block: the first row of noisy block 1 must see the rest of its noisy block and clean block 0, and nothing
    else (its own clean block least of all: that would give the answer away)."""
    def changes(logits_of, inputs, which, position):
        other = [x.clone() for x in inputs]
        other[which][0, position] = (other[which][0, position] + 1) % vocab
        return not torch.allclose(logits_of(*inputs), logits_of(*other))

    if args.objective != "block":
        x = torch.randint(0, vocab, (1, 16), device=args.device)
        changed = changes(lambda y: model(y).logits[0, 0], [x], 0, -1)
        assert changed == (args.objective == "diffusion"), \
            f"{args.objective}: the first row {'sees' if changed else 'ignores'} the last token"
        return
    b = args.block_size
    inputs = [torch.randint(0, vocab, (1, 3 * b), device=args.device) for _ in range(2)]  # noisy, clean
    row = lambda noisy, clean: block_logits(model, noisy, clean, b)[0, b]
    for which, position, seen in [(0, 2 * b - 1, True), (1, 0, True), (0, 0, False), (0, 2 * b, False),
                                  (1, b, False), (1, 2 * b, False)]:
        half = ("noisy", "clean")[which]
        assert changes(row, inputs, which, position) == seen, \
            f"noisy block 1 {'ignores' if seen else 'sees'} {half} position {position}"


def mask_probability(shape, device, generator):
    return (1 - EPS) * torch.rand(shape, device=device, generator=generator) + EPS


def masked_loss(logits_of, tokens, maskable, p_mask, mask_id, generator):
    """Masks each `maskable` position with its probability in `p_mask` [B, L] and returns the cross-entropy on
    the masked ones weighted by 1 / p_mask, summed per sequence, divided by its maskable count (all for prose,
    the answer and its padding for tasks), averaged over the batch. `logits_of(noisy)` gives [B, L, V]."""
    batch, length = tokens.shape
    masked = (torch.rand(batch, length, device=tokens.device, generator=generator) < p_mask) & maskable
    noisy = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    logits = logits_of(noisy).float()
    token_loss = F.cross_entropy(logits[masked], tokens[masked], reduction="none") / p_mask[masked]
    per_sequence = torch.zeros(batch, device=tokens.device).index_add_(
        0, masked.nonzero()[:, 0], token_loss)
    return (per_sequence / maskable.sum(1).clamp(min=1)).mean()


def diffusion_loss(model, tokens, maskable, mask_id, generator):
    """LLaDA's objective: one masking probability per sequence."""
    batch, length = tokens.shape
    p_mask = mask_probability((batch, 1), tokens.device, generator).expand(-1, length)
    return masked_loss(lambda noisy: model(noisy).logits, tokens, maskable, p_mask, mask_id, generator)


def block_loss(model, tokens, maskable, mask_id, generator, block):
    """Block diffusion's objective: one masking probability per block, all blocks denoised in one forward
    against the clean sequence."""
    batch, length = tokens.shape
    blocks = -(-length // block)
    p_mask = mask_probability((batch, blocks), tokens.device, generator).repeat_interleave(block, dim=1)
    return masked_loss(lambda noisy: block_logits(model, noisy, tokens, block), tokens, maskable,
                       p_mask[:, :length], mask_id, generator)


def ar_loss(model, tokens, predicted):
    """Next-token cross-entropy on the positions `predicted` marks (targets), averaged over them."""
    logits = model(tokens[:, :-1]).logits.float()
    targets = tokens[:, 1:]
    keep = predicted[:, 1:]
    return F.cross_entropy(logits[keep], targets[keep])


def losses(model, data, args, mask_id, generator, batch):
    prose = data.prose_batch(batch).to(args.device)
    tasks, answer, padded = (x.to(args.device) for x in data.task_batch(batch))
    everything = torch.ones_like(prose, dtype=torch.bool)
    if args.objective == "diffusion":
        return (diffusion_loss(model, prose, everything, mask_id, generator),
                diffusion_loss(model, tasks, padded, mask_id, generator))
    if args.objective == "block":
        return (block_loss(model, prose, everything, mask_id, generator, args.block_size),
                block_loss(model, tasks, padded, mask_id, generator, args.block_size))
    return ar_loss(model, prose, everything), ar_loss(model, tasks, answer)


@torch.no_grad()
def evaluate(model, data, args, mask_id):
    """Held-out losses with a fixed seed, so evaluations are comparable across steps."""
    model.eval()
    data.rng.seed(args.seed + 1)
    generator = torch.Generator(device=args.device).manual_seed(args.seed + 1)
    totals = {"prose": 0.0, "tasks": 0.0}
    for _ in range(args.eval_batches):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda"):
            prose, tasks = losses(model, data, args, mask_id, generator, args.batch)
        totals["prose"] += prose.item() / args.eval_batches
        totals["tasks"] += tasks.item() / args.eval_batches
    model.train()
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objective", choices=["diffusion", "ar", "block"], required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=7.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=100000)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=4, help="block diffusion's block length")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=96, help="sequences per half-batch (prose and tasks)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    tokenizer = spm.SentencePieceProcessor(model_file=str(Path(args.data) / "tokenizer.model"))
    mask_id = tokenizer.piece_to_id("<|mdm_mask|>")
    train = Data(args.data, tokenizer, args.seq_len, "train", args.seed)
    valid = Data(args.data, tokenizer, args.seq_len, "valid", args.seed + 1)
    config = model_config(tokenizer.get_piece_size(), args)
    # block passes its own 4-D mask, which SDPA applies as given.
    attention = "bidirectional_sdpa" if args.objective == "diffusion" else "sdpa"
    model = architecture(args.objective)[1]._from_config(config, attn_implementation=attention).to(args.device)
    check_attention(model, args, config.vocab_size)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.objective}: {parameters:,} parameters; prose chunks {len(train.prose)}, "
          f"tasks {', '.join(f'{k} {len(v)}' for k, v in train.task_ids.items())}", flush=True)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    budget = args.minutes * 60
    start = time.time()
    log = open(out / "log.jsonl", "w")
    step, sequences = 0, 0
    while step < args.max_steps:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        # The cosine schedule runs over the time budget, whatever the speed turns out to be.
        progress = min(1.0, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda"):
            prose_loss, task_loss = losses(model, train, args, mask_id, generator, args.batch)
        loss = prose_loss + task_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        sequences += args.batch * 2
        if step % args.eval_every == 0:
            held_out = evaluate(model, valid, args, mask_id)
            record = {"step": step, "sequences": sequences, "lr": lr, "train_prose": prose_loss.item(),
                      "train_tasks": task_loss.item(), "valid_prose": held_out["prose"],
                      "valid_tasks": held_out["tasks"], "seconds": round(time.time() - start, 1)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record), flush=True)
    held_out = evaluate(model, valid, args, mask_id)
    summary = {"objective": args.objective, "parameters": parameters, "steps": step, "sequences": sequences,
               "seconds": round(time.time() - start, 1), "valid_prose": held_out["prose"],
               "valid_tasks": held_out["tasks"], "config": {k: v for k, v in vars(args).items() if k != "device"}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    torch.save({"state_dict": model.state_dict(), "config": config.to_dict(), "block_size": args.block_size},
               out / "model.pt")


if __name__ == "__main__":
    main()
