"""The PyTorch reference decoders dlm is timed against, on a transformers model on the GPU (bf16).

LLaDA (GSAI-ML/LLaDA generate.py) and Fast-dLLM's dual cache (generate_with_dual_cache) at temperature 0 with
low-confidence remasking and a fixed number of tokens per step, and greedy AR decoding with a KV cache.
They follow the released code, with two changes that only remove host synchronisations: the per-row top-k
loop is one batched top-k (every row has the same count), and a block ends after its scheduled steps
rather than by testing the canvas for masks. Softmax is float32.

The LLaDA model is transformers' LlamaForCausalLM (tools/bench/torch_checkpoints.py) called with an all-zero
4-D additive mask: every position attends to every other, LLaDA's forward. Its LM head covers every canvas
position, as LLaDA's model does.
"""
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def split_evenly(n, steps):
    """LLaDA's get_num_transfer_tokens: n // steps per step, the first n % steps one more."""
    return [n // steps + (1 if i < n % steps else 0) for i in range(steps)]


def full_mask(batch, queries, keys, dtype=torch.bfloat16):
    """The all-zero additive mask [batch, 1, queries, keys]: bidirectional attention."""
    return torch.zeros(batch, 1, queries, keys, dtype=dtype, device="cuda")


def canvas(prompt, gen_length, mask_id):
    """prompt [B, P] followed by gen_length MASK ids."""
    return torch.cat([prompt, torch.full((prompt.shape[0], gen_length), mask_id, dtype=prompt.dtype,
                                         device=prompt.device)], dim=1)


def commit(logits, x, candidates, k):
    """LLaDA's low-confidence step at temperature 0: x0 = argmax, confidence = softmax(logits)[x0] on the
    candidate positions (-inf elsewhere), the k most confident candidates of every row take x0. Returns the
    new x; logits [B, T, V] and x, candidates [B, T] cover the same positions."""
    x0 = torch.argmax(logits, dim=-1)
    p = torch.softmax(logits.float(), dim=-1)
    x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
    confidence = torch.where(candidates, x0_p, -torch.inf)
    chosen = torch.zeros_like(candidates).scatter_(1, torch.topk(confidence, k, dim=-1).indices, True)
    return torch.where(chosen, x0, x)


# ---- LLaDA: full recompute ----------------------------------------------------------------------------------

def llada_forward(model, x, mask):
    return model(input_ids=x, attention_mask=mask, use_cache=False).logits


def llada_step(model, x, mask, block_end, k, mask_id):
    """One full-recompute step: a forward of the whole canvas, then commit k of the masked positions before
    block_end (LLaDA sets the confidence past the current block to -inf)."""
    logits = llada_forward(model, x, mask)
    candidates = x == mask_id
    candidates[:, block_end:] = False
    return commit(logits, x, candidates, k)


def llada_generate(model, prompt, gen_length, block_length, steps, mask_id, blocks=None):
    """LLaDA's generate(): semi-autoregressive blocks, steps split evenly over them, one full forward per step.
    blocks: decode only the first `blocks` blocks (a warm-up). Returns (x, forwards)."""
    x = canvas(prompt, gen_length, mask_id)
    mask = full_mask(x.shape[0], x.shape[1], x.shape[1])
    num_blocks = gen_length // block_length
    counts = split_evenly(block_length, steps // num_blocks)  # every block starts fully masked
    forwards = 0
    for b in range(num_blocks if blocks is None else blocks):
        block_end = prompt.shape[1] + (b + 1) * block_length
        for k in counts:
            x = llada_step(model, x, mask, block_end, k, mask_id)
            forwards += 1
    return x, forwards


# ---- Fast-dLLM: dual cache ----------------------------------------------------------------------------------

class DualCache:
    """Fast-dLLM's dual cache as a transformers cache object: K/V of every canvas position, per layer.
    transformers calls update(k, v, layer) with the K/V of the positions being computed; they are written at
    [start, start + n) and the whole canvas' K/V are returned, so the queries attend to every position: all
    fresh in a refresh forward (start 0, n = the canvas), the cached ones plus the block's own fresh K/V in a
    block step (Fast-dLLM's replace_position)."""

    def __init__(self):
        self.keys, self.values = {}, {}
        self.start = 0

    def update(self, key_states, value_states, layer_idx, cache_kwargs=None):
        if layer_idx not in self.keys:  # the refresh forward comes first and sizes the buffers
            self.keys[layer_idx], self.values[layer_idx] = key_states.clone(), value_states.clone()
        else:
            end = self.start + key_states.shape[2]
            self.keys[layer_idx][:, :, self.start:end] = key_states
            self.values[layer_idx][:, :, self.start:end] = value_states
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx=0):
        return self.keys[layer_idx].shape[2] if layer_idx in self.keys else 0


def dual_refresh(model, x, cache, mask):
    """The full forward at a block's start: recomputes every position's K/V into the cache, returns logits."""
    cache.start = 0
    positions = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
    return model(input_ids=x, attention_mask=mask, position_ids=positions, past_key_values=cache,
                 use_cache=True).logits


def dual_block_forward(model, x, cache, start, end, mask):
    """The block's positions [start, end) against the cached K/V of all the others: logits [B, end-start, V]."""
    cache.start = start
    positions = torch.arange(start, end, device=x.device).expand(x.shape[0], -1)
    return model(input_ids=x[:, start:end], attention_mask=mask, position_ids=positions, past_key_values=cache,
                 use_cache=True).logits


def fast_dllm_generate(model, prompt, gen_length, block_length, steps, mask_id, blocks=None):
    """generate_with_dual_cache with a fixed count per step: per block, a refresh forward (which also takes the
    block's first step) and then steps_per_block - 1 forwards of the block's positions alone. blocks: decode
    only the first `blocks` blocks (a warm-up). Returns (x, forwards)."""
    x = canvas(prompt, gen_length, mask_id)
    batch, length = x.shape
    full, block = full_mask(batch, length, length), full_mask(batch, block_length, length)
    num_blocks = gen_length // block_length
    counts = split_evenly(block_length, steps // num_blocks)
    cache, forwards = DualCache(), 0
    for b in range(num_blocks if blocks is None else blocks):
        start = prompt.shape[1] + b * block_length
        end = start + block_length
        logits = dual_refresh(model, x, cache, full)
        candidates = x == mask_id
        candidates[:, end:] = False
        x = commit(logits, x, candidates, counts[0])
        forwards += 1
        for k in counts[1:]:
            logits = dual_block_forward(model, x, cache, start, end, block)
            x[:, start:end] = commit(logits, x[:, start:end], x[:, start:end] == mask_id, k)
            forwards += 1
    return x, forwards


# ---- Autoregressive ----------------------------------------------------------------------------------------

# SDPA picks cuDNN's attention for the one-query decode forwards (in the loop and in generate()), and cuDNN
# builds a graph for every key length it has not seen yet: about 45 ms each, 12 s of a 256-token decode, measured
# on the H200 with torch 2.11 / transformers 5.17. Both AR decoders leave cuDNN out, so that a decode is timed
# warm without a warm-up over every length.
DECODE_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def ar_generate_loop(model, prompt, new_tokens):
    """Greedy decoding with transformers' DynamicCache: a prefill forward (LM head on the last position only),
    then one forward per token, no mask (causal). Returns the generated ids [B, new_tokens]."""
    from transformers import DynamicCache

    with sdpa_kernel(DECODE_ATTENTION):
        cache = DynamicCache(config=model.config)
        logits = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        token = torch.argmax(logits[:, -1], dim=-1, keepdim=True)
        out = [token]
        for _ in range(new_tokens - 1):
            logits = model(input_ids=token, past_key_values=cache, use_cache=True).logits
            token = torch.argmax(logits[:, -1], dim=-1, keepdim=True)
            out.append(token)
    return torch.cat(out, dim=1)


def ar_generate_hf(model, prompt, new_tokens):
    """transformers' generate(): greedy, exactly new_tokens (min_new_tokens holds EOS off), DynamicCache. The
    checkpoint's generation_config (Qwen2.5's sampling defaults) is overridden: no sampling, no repetition
    penalty. cuDNN attention left out, as in the loop."""
    with sdpa_kernel(DECODE_ATTENTION):
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             repetition_penalty=1.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    return out[:, prompt.shape[1]:]
