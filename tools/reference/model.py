"""Float64 reference forward of the dense decoder transformers in tests/golden/parity/models/{llama,qwen2,qwen3}.

Hugging Face layouts LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM: RMSNorm, GQA, optional QKV bias
(qwen2), per-head q_norm/k_norm before RoPE (qwen3), head_dim from config.json, RoPE default or YaRN with
transformers' inv_freq and attention factor, lm_head tied to the embeddings when lm_head.weight is absent.

RoPE angles follow transformers exactly: position (float32) times inv_freq (float32), rounded to float32;
everything after that, the rotation included, is float64.

    model = Transformer("tests/golden/parity/models/llama")
    out = model.forward(ids, positions, causal)                 # logits [Q,V], out.kv: the queries' K/V
    more = model.forward(ids2, positions2, causal, past=out.kv)  # attends to the cached keys too

A visibility rule is a function (query positions [Q], key positions [K]) -> bool [Q,K]: bidirectional,
causal, or block_causal(B). Keys are identified by their positions, so a cache is any KV of positions
(a prefix, a whole canvas with some positions replaced, committed blocks).

Run as a script to check the forward against the committed transformers logits:
    /usr/bin/python3 tools/reference/model.py [tests/golden/parity]
"""

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Safetensors dtypes read here: little-endian raw data.
_NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8"}
PARITY_BLOCK = 4  # BLOCK of tools/parity/transformers_parity.py (the block_causal and block_cached cases)
TOLERANCE = 1e-5


def read_safetensors(path):
    """{name: tensor}: floats as float64, integers as int64; plus the header's __metadata__ (or {})."""
    data = Path(path).read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = data[8 + length + start:8 + length + end]
        if info["dtype"] == "BF16":  # the upper half of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, _NUMPY_DTYPES[info["dtype"]])
        tensor = torch.from_numpy(array.reshape(info["shape"]).copy())
        tensors[name] = tensor.long() if info["dtype"].startswith("I") else tensor.double()
    return tensors, metadata


def bidirectional(query_positions, key_positions):
    return torch.ones(len(query_positions), len(key_positions), dtype=torch.bool)


def causal(query_positions, key_positions):
    return key_positions[None, :] <= query_positions[:, None]


def block_causal(block):
    def visible(query_positions, key_positions):
        return (key_positions[None, :] // block) <= (query_positions[:, None] // block)
    return visible


@dataclass
class KV:
    """Per-layer keys (after RoPE) and values [kv_heads, T, head_dim] of the positions [T]."""
    keys: list
    values: list
    positions: torch.Tensor

    def take(self, index):
        """The entries at index (a bool mask or indices over T)."""
        return KV([k[:, index] for k in self.keys], [v[:, index] for v in self.values], self.positions[index])

    def join(self, other):
        return KV([torch.cat([a, b], 1) for a, b in zip(self.keys, other.keys)],
                  [torch.cat([a, b], 1) for a, b in zip(self.values, other.values)],
                  torch.cat([self.positions, other.positions]))


@dataclass
class Output:
    logits: torch.Tensor  # [Q, V] float64
    kv: KV                # the queries' own keys/values


def _rope_settings(config):
    """(theta, scaling dict) as transformers 5 reads them: a non-empty legacy rope_scaling wins."""
    parameters = config.get("rope_scaling") or config.get("rope_parameters") or {}
    theta = parameters.get("rope_theta", config.get("rope_theta", 10000.0))
    return theta, parameters


def rope_inv_freq(config, head_dim):
    """(inv_freq float32 [head_dim/2], attention factor) per transformers' default and YaRN rules."""
    theta, parameters = _rope_settings(config)
    kind = parameters.get("rope_type", parameters.get("type", "default"))
    bases = theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    if kind == "default":
        return 1.0 / bases, 1.0
    if kind != "yarn":
        raise ValueError(f"rope type {kind} not supported")
    factor = parameters["factor"]
    original = parameters.get("original_max_position_embeddings") or config["max_position_embeddings"]
    beta_fast = parameters.get("beta_fast") or 32.0
    beta_slow = parameters.get("beta_slow") or 1.0

    def correction_dim(rotations):
        return head_dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if parameters.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolation_weight = 1 - ramp
    inv_freq = (1.0 / (factor * bases)) * (1 - extrapolation_weight) + (1.0 / bases) * extrapolation_weight

    def mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if parameters.get("attention_factor") is not None:
        attention = parameters["attention_factor"]
    elif parameters.get("mscale") and parameters.get("mscale_all_dim"):
        attention = mscale(factor, parameters["mscale"]) / mscale(factor, parameters["mscale_all_dim"])
    else:
        attention = mscale(factor)
    return inv_freq, attention


def _rms_norm(x, weight, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, cos, sin):
    """HF rotate_half RoPE on [heads, T, head_dim] with cos/sin [T, head_dim]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class Transformer:
    def __init__(self, directory):
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        self.weights, _ = read_safetensors(directory / "model.safetensors")
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads", self.heads)
        self.head_dim = config.get("head_dim") or config["hidden_size"] // self.heads
        self.eps = config["rms_norm_eps"]
        self.inv_freq, self.attention_factor = rope_inv_freq(config, self.head_dim)
        self.lm_head = self.weights.get("lm_head.weight", self.weights["model.embed_tokens.weight"])
        self.vocab = self.lm_head.shape[0]

    def _w(self, name):
        return self.weights[name]

    def _linear(self, x, name):
        y = x @ self._w(name + ".weight").T
        bias = self.weights.get(name + ".bias")
        return y if bias is None else y + bias

    def _heads(self, x, count):
        return x.view(x.shape[0], count, self.head_dim).transpose(0, 1)  # [heads, T, head_dim]

    def _rope_tables(self, positions):
        angles = (positions.float()[:, None] * self.inv_freq[None, :]).double()  # float32 product, as HF
        angles = torch.cat([angles, angles], -1)
        return angles.cos() * self.attention_factor, angles.sin() * self.attention_factor

    def _attention(self, layer, x, positions, visible, past):
        prefix = f"model.layers.{layer}.self_attn."
        q = self._heads(self._linear(x, prefix + "q_proj"), self.heads)
        k = self._heads(self._linear(x, prefix + "k_proj"), self.kv_heads)
        v = self._heads(self._linear(x, prefix + "v_proj"), self.kv_heads)
        if prefix + "q_norm.weight" in self.weights:
            q = _rms_norm(q, self._w(prefix + "q_norm.weight"), self.eps)
            k = _rms_norm(k, self._w(prefix + "k_norm.weight"), self.eps)
        cos, sin = self._rope_tables(positions)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        keys, values, key_positions = k, v, positions
        if past is not None:
            keys = torch.cat([past.keys[layer], k], 1)
            values = torch.cat([past.values[layer], v], 1)
            key_positions = torch.cat([past.positions, positions])
        group = self.heads // self.kv_heads
        keys_q, values_q = keys.repeat_interleave(group, 0), values.repeat_interleave(group, 0)
        scores = q @ keys_q.transpose(1, 2) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~visible(positions, key_positions)[None], -math.inf)
        out = torch.softmax(scores, -1) @ values_q  # [heads, Q, head_dim]
        out = out.transpose(0, 1).reshape(x.shape[0], self.heads * self.head_dim)
        return self._linear(out, prefix + "o_proj"), k, v

    def _mlp(self, layer, x):
        prefix = f"model.layers.{layer}.mlp."
        gate, up = self._linear(x, prefix + "gate_proj"), self._linear(x, prefix + "up_proj")
        return self._linear(torch.nn.functional.silu(gate) * up, prefix + "down_proj")

    def forward(self, ids, positions, visible, past=None):
        """Logits [Q,V] of the query tokens ids [Q] at positions [Q], attending to past (a KV) and to each
        other as visible allows, and the queries' own K/V."""
        ids, positions = torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(positions, dtype=torch.long)
        x = self._w("model.embed_tokens.weight")[ids]
        keys, values = [], []
        for layer in range(self.layers):
            prefix = f"model.layers.{layer}."
            attended, k, v = self._attention(layer, _rms_norm(x, self._w(prefix + "input_layernorm.weight"),
                                                              self.eps), positions, visible, past)
            x = x + attended
            x = x + self._mlp(layer, _rms_norm(x, self._w(prefix + "post_attention_layernorm.weight"), self.eps))
            keys.append(k)
            values.append(v)
        logits = _rms_norm(x, self._w("model.norm.weight"), self.eps) @ self.lm_head.T
        return Output(logits, KV(keys, values, positions))


def _case_logits(model, tensors, case):
    """Our logits for one case of <base>_logits.safetensors (see tools/parity/transformers_parity.py)."""
    arange = torch.arange
    blocks = block_causal(PARITY_BLOCK)
    if case in ("causal", "bidirectional", "block_causal"):
        ids = tensors[f"{case}.input_ids"]
        visible = {"causal": causal, "bidirectional": bidirectional, "block_causal": blocks}[case]
        return [(model.forward(ids, arange(len(ids)), visible).logits, tensors[f"{case}.logits"])]
    if case == "batch":
        pairs, b = [], 0
        while f"batch.input_ids.{b}" in tensors:
            ids = tensors[f"batch.input_ids.{b}"]
            pairs.append((model.forward(ids, arange(len(ids)), causal).logits, tensors[f"batch.logits.{b}"]))
            b += 1
        return pairs
    if case == "cached":
        prompt, more = tensors["cached.prompt_ids"], tensors["cached.continuation_ids"]
        past = model.forward(prompt, arange(len(prompt)), causal).kv
        ours = model.forward(more, arange(len(prompt), len(prompt) + len(more)), causal, past).logits
        return [(ours, tensors["cached.logits"])]
    if case == "block_cached":
        prefix, block = tensors["block_cached.prefix_ids"], tensors["block_cached.block_ids"]
        past = model.forward(prefix, arange(len(prefix)), blocks).kv
        ours = model.forward(block, arange(len(prefix), len(prefix) + len(block)), blocks, past).logits
        return [(ours, tensors["block_cached.logits"])]
    raise ValueError(f"unknown case {case}")


def self_check(parity_dir):
    """{base: {case: max|ours - ref| / max(1, max|ref|)}} against the committed transformers logits."""
    parity_dir = Path(parity_dir)
    errors = {}
    for base in ("llama", "qwen2", "qwen3"):
        model = Transformer(parity_dir / "models" / base)
        tensors, metadata = read_safetensors(parity_dir / f"{base}_logits.safetensors")
        errors[base] = {}
        for case in metadata["cases"].split(","):
            errors[base][case] = max(float((ours - ref).abs().max() / max(1.0, float(ref.abs().max())))
                                     for ours, ref in _case_logits(model, tensors, case))
    return errors


def main():
    errors = self_check(sys.argv[1] if len(sys.argv) > 1 else "tests/golden/parity")
    worst = max(e for cases in errors.values() for e in cases.values())
    for base, cases in errors.items():
        print(base, " ".join(f"{case}={error:.2e}" for case, error in cases.items()))
    print(f"worst {worst:.2e} (tolerance {TOLERANCE:.0e})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
