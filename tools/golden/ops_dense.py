#!/usr/bin/env python3
"""Golden values for the dense ops, checked by tests/unit/ops_golden_test.cpp.

Usage: python3 tools/golden/ops_dense.py tests/golden/ops_dense.safetensors
Needs torch and the `safetensors` package (without `safetensors` it computes everything, prints a summary and
writes nothing: a dry run).

Inputs are drawn from one torch.Generator with a fixed seed. Every op is computed by torch in float64 from
exactly the stored inputs (bf16/f16 weights are drawn as torch bf16/f16 tensors, stored as such, and upcast
exactly), and the result is stored as float32. RoPE angles follow Hugging Face exactly: position (float32)
times inv_freq (float32) rounded to float32, as LlamaRotaryEmbedding computes them; the rotation itself is
float64.

Naming: every tensor is "<case>.<arg>": <arg> is the op's argument (x, weight, bias, table, ids, positions,
inv_freq, gate, up, a, b) or "out", the expected result. Scalar parameters are in the file's metadata under
the same scheme ("<case>.eps", "<case>.rotary_dim", ...). Cases:
  linear_f32, linear_bf16, linear_f16    x f32 [M,K], weight [N,K] of that dtype, bias [N] of that dtype
  linear_nobias                          f32, no bias
  embedding_f32, embedding_bf16          table [V,D]; ids i64 for f32, i32 for bf16
  rms_norm_plain, rms_norm_one_plus      x [R,D], weight f32 / bf16; metadata eps, mode (plain | one_plus)
  layer_norm, layer_norm_nobias          x [R,D], weight, (bias); metadata eps
  rope_half_split, rope_interleaved,     x [T,H,D], positions i32 [T], inv_freq f32 [rotary_dim/2]; metadata
  rope_large_position                    layout (half_split | interleaved), rotary_dim, attention_factor,
                                         theta; inv_freq is HF's default for theta and rotary_dim, so it is
                                         also the expected default_rope_inv_freq(theta, rotary_dim)
  silu, gelu, gelu_tanh                  x; out
  swiglu, geglu, geglu_tanh              gate, up; out
  softmax, log_softmax                   x [R,V]; out over the last axis
  add, add_row                           a, b (same shape, or b [D] added to each row of a [R,D]); out
"""

import sys

import torch
import torch.nn.functional as F

try:
    from safetensors.torch import save_file
except ImportError:  # dry run only
    save_file = None

SEED = 20240611

gen = torch.Generator().manual_seed(SEED)
tensors = {}
metadata = {}


def randn(*shape, scale=1.0, dtype=torch.float32):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


def put(case, **named):
    for arg, value in named.items():
        if isinstance(value, torch.Tensor):
            tensors[f"{case}.{arg}"] = value.contiguous()
        else:
            metadata[f"{case}.{arg}"] = str(value)


def store_out(case, value):
    put(case, out=value.to(torch.float32))


# ---------------------------------------------------------------------------------------------------- linear
def linear_case(case, m, k, n, dtype, with_bias=True):
    x = randn(m, k)
    weight = randn(n, k, dtype=dtype)
    bias = randn(n, dtype=dtype) if with_bias else None
    out = F.linear(x.double(), weight.double(), bias.double() if with_bias else None)
    put(case, x=x, weight=weight)
    if with_bias:
        put(case, bias=bias)
    store_out(case, out)


linear_case("linear_f32", 7, 129, 67, torch.float32)
linear_case("linear_bf16", 9, 129, 67, torch.bfloat16)
linear_case("linear_f16", 1, 129, 67, torch.float16)
linear_case("linear_nobias", 5, 33, 17, torch.float32, with_bias=False)


# ------------------------------------------------------------------------------------------------- embedding
def embedding_case(case, vocab, dim, count, dtype, id_dtype):
    table = randn(vocab, dim, dtype=dtype)
    ids = torch.randint(0, vocab, (count,), generator=gen, dtype=torch.int64)
    ids[0], ids[-1] = 0, vocab - 1  # both ends of the table
    put(case, table=table, ids=ids.to(id_dtype))
    store_out(case, F.embedding(ids, table.double()))


embedding_case("embedding_f32", 50, 24, 13, torch.float32, torch.int64)
embedding_case("embedding_bf16", 50, 24, 13, torch.bfloat16, torch.int32)


# ----------------------------------------------------------------------------------------------------- norms
def rms_norm_case(case, rows, dim, dtype, mode, eps):
    x = randn(rows, dim, scale=2.0)
    weight = randn(dim, dtype=dtype)
    xd = x.double()
    normed = xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + eps)
    scale = weight.double() if mode == "plain" else 1.0 + weight.double()
    put(case, x=x, weight=weight, eps=eps, mode=mode)
    store_out(case, normed * scale)


rms_norm_case("rms_norm_plain", 6, 48, torch.float32, "plain", 1e-6)
rms_norm_case("rms_norm_one_plus", 6, 48, torch.bfloat16, "one_plus", 1e-5)


def layer_norm_case(case, rows, dim, with_bias, eps):
    x = randn(rows, dim, scale=2.0) + 0.5
    weight = randn(dim)
    bias = randn(dim) if with_bias else None
    out = F.layer_norm(x.double(), (dim,), weight.double(), bias.double() if with_bias else None, eps)
    put(case, x=x, weight=weight, eps=eps)
    if with_bias:
        put(case, bias=bias)
    store_out(case, out)


layer_norm_case("layer_norm", 6, 48, True, 1e-5)
layer_norm_case("layer_norm_nobias", 3, 40, False, 1e-6)


# ------------------------------------------------------------------------------------------------------ rope
def hf_default_inv_freq(theta, dim):
    # transformers' _compute_default_rope_parameters, in float32.
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))


def hf_freqs(inv_freq, positions):
    # LlamaRotaryEmbedding.forward: float32 (inv_freq @ positions), i.e. one float32 product per angle.
    inv_freq_expanded = inv_freq[None, :, None].float()
    position_ids_expanded = positions[None, None, :].float()
    return (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)[0]  # [T, rotary_dim/2]


def rope_reference(x, freqs, layout, rotary_dim, attention_factor):
    xd = x.double()
    rot, rest = xd[..., :rotary_dim], xd[..., rotary_dim:]
    angles = freqs.double()
    if layout == "half_split":
        emb = torch.cat((angles, angles), dim=-1)
        half = rotary_dim // 2
        rotated_half = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)  # HF rotate_half
    else:
        emb = torch.repeat_interleave(angles, 2, dim=-1)
        rotated_half = torch.stack((-rot[..., 1::2], rot[..., ::2]), dim=-1).flatten(-2)  # GPT-J rotate_every_two
    cos = (emb.cos() * attention_factor)[:, None, :]
    sin = (emb.sin() * attention_factor)[:, None, :]
    return torch.cat((rot * cos + rotated_half * sin, rest), dim=-1)


def rope_case(case, tokens, heads, dim, rotary_dim, layout, theta, attention_factor, positions=None):
    x = randn(tokens, heads, dim)
    if positions is None:
        positions = torch.randint(0, 4096, (tokens,), generator=gen, dtype=torch.int64)
    inv_freq = hf_default_inv_freq(theta, rotary_dim)
    freqs = hf_freqs(inv_freq, positions)
    put(case, x=x, positions=positions.to(torch.int32), inv_freq=inv_freq, layout=layout,
        rotary_dim=rotary_dim, attention_factor=attention_factor, theta=theta)
    store_out(case, rope_reference(x, freqs, layout, rotary_dim, attention_factor))


rope_case("rope_half_split", 5, 3, 16, 12, "half_split", 10000.0, 1.0)
rope_case("rope_interleaved", 5, 3, 16, 12, "interleaved", 10000.0, 1.25)
rope_case("rope_large_position", 6, 2, 128, 128, "half_split", 500000.0, 1.0,
          positions=torch.tensor([0, 1, 4097, 65535, 100000, 131071], dtype=torch.int64))


# ----------------------------------------------------------------------------------------------- elementwise
for case, act in (("silu", F.silu), ("gelu", F.gelu), ("gelu_tanh", lambda v: F.gelu(v, approximate="tanh"))):
    x = randn(4, 100, scale=3.0)
    put(case, x=x)
    store_out(case, act(x.double()))

for case, act in (("swiglu", F.silu), ("geglu", F.gelu), ("geglu_tanh", lambda v: F.gelu(v, approximate="tanh"))):
    gate, up = randn(3, 77, scale=3.0), randn(3, 77)
    put(case, gate=gate, up=up)
    store_out(case, act(gate.double()) * up.double())

for case, b_shape in (("add", (5, 37)), ("add_row", (37,))):
    a, b = randn(5, 37), randn(*b_shape)
    put(case, a=a, b=b)
    store_out(case, a.double() + b.double())

for case, op, width in (("softmax", torch.softmax, 1000), ("log_softmax", torch.log_softmax, 333)):
    x = randn(4, width, scale=4.0)
    put(case, x=x)
    store_out(case, op(x.double(), dim=-1))


# -------------------------------------------------------------------------------------------------- writing
size = sum(t.numel() * t.element_size() for t in tensors.values())
print(f"{len(tensors)} tensors, {size} bytes of data, torch {torch.__version__}")
if save_file is None:
    print("safetensors is not installed: dry run, nothing written")
    sys.exit(0)
if len(sys.argv) != 2:
    sys.exit("usage: ops_dense.py OUTPUT.safetensors")
save_file(tensors, sys.argv[1], metadata=metadata)
print(f"wrote {sys.argv[1]}")
