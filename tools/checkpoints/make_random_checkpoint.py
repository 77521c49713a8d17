#!/usr/bin/env python3
"""Writes a full-size random-weight Hugging Face model directory for benchmarks.

The directory has the exact tensor names and shapes of a released checkpoint (LLaDA-8B-Instruct,
Dream-v0-Instruct-7B, Qwen2.5-7B-Instruct), so the engine and transformers load it like the real one; only the
values are random, and the tokenizer is a byte-level BPE with the family's special tokens at their real ids.

  python3 tools/checkpoints/make_random_checkpoint.py --family llada-8b --out /tmp/dlm-ckpt/llada-8b

Safetensors shards are written by hand, tensor by tensor in bounded chunks, so memory stays small whatever
the model's size. `--fill normal` (the default) draws N(0, 0.02) with torch, on CUDA when there is a GPU; each
tensor has its own generator seeded from --seed and the tensor's index, so a run is reproducible.
`--fill zeros` needs only the Python standard library. Norm weights are always 1. See README.md beside this.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MAX_SHARD_BYTES = 5_000_000_000  # transformers' default max_shard_size, "5GB"
CHUNK_ELEMENTS = 1 << 25  # values generated and written at a time: 128 MiB of f32
HEADER_ALIGNMENT = 8
DTYPES = {"bf16": ("BF16", 2, "bfloat16"), "f32": ("F32", 4, "float32")}
# The bytes of 1.0 in each dtype, little-endian.
ONE_BYTES = {"bf16": b"\x80\x3f", "f32": b"\x00\x00\x80\x3f"}


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    is_norm: bool  # filled with ones

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Family:
    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    context: int
    llada_format: bool  # LLaDA's OLMo-style config keys and tensor names, else Qwen2's
    published_parameters: int  # at the full layer count
    special_tokens: dict[str, int]  # content -> id, at the released tokenizer's ids
    token_roles: dict[str, str]  # tokenizer_config.json: bos/eos/pad/mask -> content
    config: dict  # config.json keys beyond the sizes
    generation_config: dict


# Qwen2.5-7B's shape, which Dream-v0-7B keeps.
QWEN25_7B_SHAPE = dict(hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, vocab=152064,
                       published_parameters=7_615_616_512)
QWEN2_SETTINGS = {
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_window_layers": 28,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": False,
    "use_cache": True,
    "use_sliding_window": False,
}

FAMILIES = {
    "llada-8b": Family(
        name="llada-8b",
        hidden=4096,
        intermediate=12288,
        layers=32,
        heads=32,
        kv_heads=32,
        vocab=126464,
        context=4096,
        llada_format=True,
        published_parameters=8_015_581_184,
        special_tokens={
            "<|startoftext|>": 126080,
            "<|endoftext|>": 126081,
            "<|mdm_mask|>": 126336,
            "<|eot_id|>": 126348,
        },
        token_roles={
            "bos": "<|startoftext|>",
            "eos": "<|endoftext|>",
            "pad": "<|endoftext|>",
            "mask": "<|mdm_mask|>",
        },
        config={
            "architectures": ["LLaDAModelLM"],
            "model_type": "llada",
            "mlp_ratio": 4,
            "rope": True,
            "rope_theta": 500000.0,
            "rope_full_precision": True,
            "rms_norm_eps": 1e-05,
            "block_type": "llama",
            "activation_type": "silu",
            "layer_norm_type": "rms",
            "layer_norm_with_affine": True,
            "include_bias": False,
            "include_qkv_bias": False,
            "weight_tying": False,
            "alibi": False,
            "attention_layer_norm": False,
            "input_emb_norm": False,
            "scale_logits": False,
            "mask_token_id": 126336,
            "eos_token_id": 126081,
            "pad_token_id": 126081,
            "use_cache": False,
        },
        generation_config={"bos_token_id": 126080, "eos_token_id": 126081, "pad_token_id": 126081},
    ),
    "dream-7b": Family(
        name="dream-7b",
        **QWEN25_7B_SHAPE,
        context=131072,
        llada_format=False,
        special_tokens={
            "<|endoftext|>": 151643,
            "<|im_start|>": 151644,
            "<|im_end|>": 151645,
            "<|mask|>": 151666,
        },
        token_roles={
            "bos": "<|endoftext|>",
            "eos": "<|endoftext|>",
            "pad": "<|endoftext|>",
            "mask": "<|mask|>",
        },
        config={
            "architectures": ["DreamModel"],
            "model_type": "Dream",
            **QWEN2_SETTINGS,
            "rope_scaling": None,
            "sliding_window": None,
            "mask_token_id": 151666,
            "bos_token_id": 151643,
            "eos_token_id": 151643,
            "pad_token_id": 151643,
        },
        generation_config={"bos_token_id": 151643, "eos_token_id": 151643, "pad_token_id": 151643},
    ),
    "qwen2.5-7b": Family(
        name="qwen2.5-7b",
        **QWEN25_7B_SHAPE,
        context=32768,
        llada_format=False,
        special_tokens={"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645},
        token_roles={"bos": "<|endoftext|>", "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        config={
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            **QWEN2_SETTINGS,
            "sliding_window": 131072,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
        },
        # Qwen2.5-7B-Instruct's released sampling defaults.
        generation_config={
            "bos_token_id": 151643,
            "pad_token_id": 151643,
            "do_sample": True,
            "eos_token_id": [151645, 151643],
            "repetition_penalty": 1.05,
            "temperature": 0.7,
            "top_p": 0.8,
            "top_k": 20,
        },
    ),
}


def tensor_plan(family: Family, layers: int) -> list[Tensor]:
    """Every tensor of the checkpoint, in state-dict order: embedding, layers, final norm, output layer."""
    h, m = family.hidden, family.intermediate
    head_dim = h // family.heads
    q_width, kv_width = family.heads * head_dim, family.kv_heads * head_dim
    tensors: list[Tensor] = []

    def add(name: str, *shape: int, is_norm: bool = False) -> None:
        tensors.append(Tensor(name, tuple(shape), is_norm))

    if family.llada_format:
        add("model.transformer.wte.weight", family.vocab, h)
        for i in range(layers):
            p = f"model.transformer.blocks.{i}."
            add(p + "attn_norm.weight", h, is_norm=True)
            add(p + "q_proj.weight", q_width, h)
            add(p + "k_proj.weight", kv_width, h)
            add(p + "v_proj.weight", kv_width, h)
            add(p + "attn_out.weight", h, q_width)
            add(p + "ff_norm.weight", h, is_norm=True)
            add(p + "ff_proj.weight", m, h)
            add(p + "up_proj.weight", m, h)
            add(p + "ff_out.weight", h, m)
        add("model.transformer.ln_f.weight", h, is_norm=True)
        add("model.transformer.ff_out.weight", family.vocab, h)
        return tensors

    add("model.embed_tokens.weight", family.vocab, h)
    for i in range(layers):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", h, is_norm=True)
        for proj, width in (("q_proj", q_width), ("k_proj", kv_width), ("v_proj", kv_width)):
            add(p + f"self_attn.{proj}.weight", width, h)
            add(p + f"self_attn.{proj}.bias", width)  # Qwen2 attention always has QKV biases
        add(p + "self_attn.o_proj.weight", h, q_width)
        add(p + "post_attention_layernorm.weight", h, is_norm=True)
        add(p + "mlp.gate_proj.weight", m, h)
        add(p + "mlp.up_proj.weight", m, h)
        add(p + "mlp.down_proj.weight", h, m)
    add("model.norm.weight", h, is_norm=True)
    add("lm_head.weight", family.vocab, h)
    return tensors


def split_shards(tensors: list[Tensor], item_bytes: int) -> list[list[int]]:
    """Tensor indices per shard, filled in order as transformers does: a tensor that would take the shard past
    the limit starts the next one."""
    shards: list[list[int]] = [[]]
    size = 0
    for index, tensor in enumerate(tensors):
        nbytes = tensor.numel * item_bytes
        if shards[-1] and size + nbytes > MAX_SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(index)
        size += nbytes
    return shards


def shard_name(index: int, count: int) -> str:
    return f"model-{index + 1:05d}-of-{count:05d}.safetensors"


def safetensors_header(tensors: list[Tensor], dtype: str) -> bytes:
    """The 8-byte little-endian length and the JSON header, space-padded so the data starts 8-aligned."""
    tag, item_bytes, _ = DTYPES[dtype]
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for tensor in tensors:
        end = offset + tensor.numel * item_bytes
        header[tensor.name] = {"dtype": tag, "shape": list(tensor.shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % HEADER_ALIGNMENT)
    return len(text).to_bytes(8, "little") + text


def chunk_sizes(numel: int):
    """The element counts a tensor is generated and written in."""
    for start in range(0, numel, CHUNK_ELEMENTS):
        yield min(CHUNK_ELEMENTS, numel - start)


def write_pattern(out, pattern: bytes, numel: int, item_bytes: int) -> None:
    """Writes numel values from `pattern`, which holds CHUNK_ELEMENTS of them."""
    for count in chunk_sizes(numel):
        out.write(memoryview(pattern)[: count * item_bytes])


class ZeroFill:
    """Zeros, from the standard library alone."""

    def __init__(self, dtype: str):
        self.item_bytes = DTYPES[dtype][1]
        self.zeros = bytes(CHUNK_ELEMENTS * self.item_bytes)

    def write(self, out, tensor: Tensor, index: int) -> None:
        del index  # every tensor is the same
        write_pattern(out, self.zeros, tensor.numel, self.item_bytes)

    def describe(self) -> str:
        return "zeros"


class NormalFill:
    """N(0, std) from torch, on CUDA when there is a GPU, one generator per tensor seeded by (seed, index)."""

    def __init__(self, dtype: str, seed: int, std: float):
        try:
            import torch
        except ImportError:
            sys.exit("--fill normal needs torch, which is not importable here; use --fill zeros")
        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = getattr(torch, DTYPES[dtype][2])
        self.seed = seed
        self.std = std

    def write(self, out, tensor: Tensor, index: int) -> None:
        torch = self.torch
        # Up to 2^20 tensors per checkpoint get distinct seeds. The chunks are drawn in order from the
        # tensor's generator, so the values depend only on the seed, the index and CHUNK_ELEMENTS.
        generator = torch.Generator(device=self.device).manual_seed((self.seed << 20) + index)
        for count in chunk_sizes(tensor.numel):
            values = torch.empty(count, dtype=torch.float32, device=self.device)
            values.normal_(0.0, self.std, generator=generator)
            chunk = values.to(self.dtype).cpu().contiguous()
            nbytes = chunk.numel() * chunk.element_size()
            out.write(memoryview((ctypes.c_ubyte * nbytes).from_address(chunk.data_ptr())))

    def describe(self) -> str:
        where = self.torch.cuda.get_device_name(0) if self.device.type == "cuda" else "the CPU"
        return f"normal(0, {self.std}) from seed {self.seed}, torch {self.torch.__version__} on {where}"


def tokenizer_files(family: Family) -> dict[str, dict]:
    """tokenizer.json (256 byte tokens, no merges) and tokenizer_config.json.

    The special tokens are listed in model.vocab at their real ids as well as in added_tokens: Hugging Face
    gives an added token its vocab id when it has one, else the next id after the vocab, so an added token
    outside the vocab could only take id 256."""
    alphabet = byte_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    vocab.update(family.special_tokens)
    added = [
        {
            "id": token_id,
            "content": content,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for content, token_id in sorted(family.special_tokens.items(), key=lambda item: item[1])
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "model_max_length": family.context,
        **{f"{role}_token": content for role, content in family.token_roles.items()},
    }
    return {"tokenizer.json": tokenizer, "tokenizer_config.json": config}


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the other 68 take U+0100 onwards."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable}
    next_code_point = 256
    for b in range(256):
        if b not in table:
            table[b] = chr(next_code_point)
            next_code_point += 1
    return table


def model_config(family: Family, layers: int, dtype: str) -> dict:
    if family.llada_format:
        sizes = {
            "d_model": family.hidden,
            "n_heads": family.heads,
            "n_kv_heads": family.kv_heads,
            "n_layers": layers,
            "mlp_hidden_size": family.intermediate,
            "vocab_size": family.vocab,
            "embedding_size": family.vocab,
            "max_sequence_length": family.context,
        }
    else:
        sizes = {
            "hidden_size": family.hidden,
            "intermediate_size": family.intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": family.heads,
            "num_key_value_heads": family.kv_heads,
            "vocab_size": family.vocab,
            "max_position_embeddings": family.context,
        }
    return {**family.config, **sizes, "torch_dtype": DTYPES[dtype][2]}


def prepare_directory(out: Path, force: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in out.iterdir())
    if existing and not force:
        sys.exit(f"{out}: not empty ({', '.join(existing[:5])}...); pass --force to overwrite")
    # Shards of an earlier run with another shard count would linger beside the new index.
    for path in out.iterdir():
        if re.fullmatch(r"model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json|\.partial)?", path.name):
            path.unlink()


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def human(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB ({nbytes / 2**30:.2f} GiB)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--out", type=Path, help="model directory to write (created; must be empty)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random values (0 .. 2^40)")
    parser.add_argument("--layers", type=int, help="layer count (default: the released model's)")
    parser.add_argument("--fill", choices=["normal", "zeros"], default="normal")
    parser.add_argument("--std", type=float, default=0.02, help="standard deviation for --fill normal")
    parser.add_argument("--force", action="store_true", help="write into a non-empty directory")
    parser.add_argument("--dry-run", action="store_true", help="print the shard plan, write nothing")
    args = parser.parse_args()
    if args.layers is not None and args.layers < 1:
        parser.error("--layers must be at least 1")
    if not 0 <= args.seed < 2**40:
        parser.error("--seed must be in [0, 2^40)")
    if args.out is None and not args.dry_run:
        parser.error("--out is required unless --dry-run")
    return args


def main() -> None:
    args = parse_args()
    if sys.byteorder != "little":
        sys.exit("safetensors data is little-endian; this script writes raw host memory")
    family = FAMILIES[args.family]
    layers = args.layers or family.layers
    tag, item_bytes, _ = DTYPES[args.dtype]
    tensors = tensor_plan(family, layers)
    parameters = sum(t.numel for t in tensors)
    if layers == family.layers and parameters != family.published_parameters:
        sys.exit(f"internal error: {parameters} parameters, expected {family.published_parameters}")
    total_bytes = parameters * item_bytes
    shards = split_shards(tensors, item_bytes)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    log(
        f"{family.name}: {layers} layers, {len(tensors)} tensors, {parameters:,} parameters, {tag}: "
        f"{human(total_bytes)} in {len(shards)} shard(s)"
    )
    for i, shard in enumerate(shards):
        shard_bytes = sum(tensors[j].numel for j in shard) * item_bytes
        log(f"  {shard_name(i, len(shards))}: {len(shard)} tensors, {human(shard_bytes)}")
    if args.dry_run:
        return

    filler = ZeroFill(args.dtype) if args.fill == "zeros" else NormalFill(args.dtype, args.seed, args.std)
    out: Path = args.out
    prepare_directory(out, args.force)
    free = shutil.disk_usage(out).free
    if free < total_bytes:
        sys.exit(f"{out}: {human(free)} free, the checkpoint needs {human(total_bytes)}")
    ones = ONE_BYTES[args.dtype] * CHUNK_ELEMENTS
    log(f"writing {out}: norms 1, other tensors {filler.describe()}")

    write_json(out / "config.json", model_config(family, layers, args.dtype))
    write_json(out / "generation_config.json", family.generation_config)
    for name, value in tokenizer_files(family).items():
        write_json(out / name, value)

    started = time.monotonic()
    written = 0
    weight_map: dict[str, str] = {}
    for i, shard in enumerate(shards):
        name = shard_name(i, len(shards))
        members = [tensors[j] for j in shard]
        # Renamed once complete, so a killed run leaves no shard that looks whole.
        partial = out / (name + ".partial")
        with open(partial, "wb") as f:
            f.write(safetensors_header(members, args.dtype))
            for j in shard:
                if tensors[j].is_norm:
                    write_pattern(f, ones, tensors[j].numel, item_bytes)
                else:
                    filler.write(f, tensors[j], j)
                weight_map[tensors[j].name] = name
            f.flush()
            os.fsync(f.fileno())  # the time reported includes getting the bytes to disk
        os.replace(partial, out / name)
        written += sum(t.numel for t in members) * item_bytes
        elapsed = time.monotonic() - started
        log(
            f"  wrote {name} ({i + 1}/{len(shards)}): {human(written)} so far, {elapsed:.1f} s, "
            f"{written / max(elapsed, 1e-9) / 1e9:.2f} GB/s"
        )
    write_json(
        out / "model.safetensors.index.json",
        {"metadata": {"total_size": total_bytes}, "weight_map": weight_map},
    )
    elapsed = time.monotonic() - started
    print(
        f"{out}: {family.name}, {layers} layers, {len(tensors)} tensors, {parameters:,} parameters, "
        f"{total_bytes:,} bytes of {tag} weights in {len(shards)} shard(s), {elapsed:.1f} s"
    )

if __name__ == "__main__":
    main()
