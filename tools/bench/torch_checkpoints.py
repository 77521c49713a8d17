"""Loads the model directories dlm benchmarks (tools/checkpoints/make_random_checkpoint.py) into transformers,
bf16 on the GPU, for tools/bench/torch_reference.py.

- LLaDA (config.json `model_type: llada`, OLMo-style keys and tensor names under model.transformer): LLaDA's
  released models use block_type "llama" (separate q/k/v, SwiGLU with ff_proj as the gate), so they are a
  LlamaForCausalLM whose tensors are renamed here; run with an all-zero 4-D attention mask it is LLaDA's
  bidirectional forward. The checks below refuse the OLMo options that Llama cannot express.
- Anything transformers knows (qwen2, llama, ...): AutoModelForCausalLM.from_pretrained.

Errors name the directory or file at fault and raise CheckpointError.
"""
import importlib.util
import json
import re
from pathlib import Path

import torch

LLADA_RENAMES = [  # (pattern, replacement) over LLaDA's names; the first that matches applies
    (r"model\.transformer\.wte\.weight", "model.embed_tokens.weight"),
    (r"model\.transformer\.ln_f\.weight", "model.norm.weight"),
    (r"model\.transformer\.ff_out\.weight", "lm_head.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.attn_norm\.weight", r"model.layers.\1.input_layernorm.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.(q_proj|k_proj|v_proj)\.weight", r"model.layers.\1.self_attn.\2.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.attn_out\.weight", r"model.layers.\1.self_attn.o_proj.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.ff_norm\.weight", r"model.layers.\1.post_attention_layernorm.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.ff_proj\.weight", r"model.layers.\1.mlp.gate_proj.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.up_proj\.weight", r"model.layers.\1.mlp.up_proj.weight"),
    (r"model\.transformer\.blocks\.(\d+)\.ff_out\.weight", r"model.layers.\1.mlp.down_proj.weight"),
]
# OLMo options LLaDA's code implements but that a Llama cannot express: (key, default, required value).
LLADA_REQUIRED = [("block_type", "sequential", "llama"), ("activation_type", "swiglu", "silu"),
                  ("layer_norm_type", "default", "rms"), ("include_bias", False, False),
                  ("include_qkv_bias", False, False), ("rope", False, True), ("alibi", False, False),
                  ("attention_layer_norm", False, False), ("input_emb_norm", False, False),
                  ("scale_logits", False, False), ("block_group_size", 1, 1)]


class CheckpointError(Exception):
    pass


def read_config(directory):
    """config.json of a model directory, as a dict."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a Hugging Face model directory)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None


def is_llada(config):
    return config.get("model_type") == "llada"


def llada_mask_id(config):
    return int(config.get("mask_token_id", 126336))


def llama_config_for_llada(config, source):
    """The LlamaConfig of a LLaDA config.json (block_type llama)."""
    from transformers import LlamaConfig

    for key, default, required in LLADA_REQUIRED:
        if config.get(key, default) != required:
            raise CheckpointError(f"{source}: {key} = {config.get(key, default)!r} is not supported "
                                  f"(a Llama needs {required!r})")
    if config.get("rope_scaling"):
        raise CheckpointError(f"{source}: rope_scaling is not part of LLaDA's config")
    try:
        heads = config["n_heads"]
        return LlamaConfig(
            hidden_size=config["d_model"],
            intermediate_size=config["mlp_hidden_size"],
            num_hidden_layers=config["n_layers"],
            num_attention_heads=heads,
            num_key_value_heads=1 if config.get("multi_query_attention") else (config.get("n_kv_heads") or heads),
            vocab_size=config.get("embedding_size") or config["vocab_size"],
            max_position_embeddings=config["max_sequence_length"],
            rope_theta=config.get("rope_theta", 10000.0),
            rms_norm_eps=config.get("rms_norm_eps", 1e-5),
            tie_word_embeddings=config.get("weight_tying", True),
            attention_bias=False,
            mlp_bias=False,
            hidden_act="silu",
            use_cache=False,
            attn_implementation="sdpa",
        )
    except KeyError as error:
        raise CheckpointError(f"{source}: missing key {error}") from None


def safetensors_files(directory):
    directory = Path(directory)
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        names = sorted(p.name for p in directory.glob("*.safetensors"))
    if not names:
        raise CheckpointError(f"{directory}: no *.safetensors files")
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise CheckpointError(f"{directory}: shards listed in the index are missing: {', '.join(missing)}")
    return [directory / n for n in names]


def llama_name(name, source):
    for pattern, replacement in LLADA_RENAMES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    raise CheckpointError(f"{source}: tensor {name} is not one of LLaDA's (block_type llama)")


def load_llada_as_llama(directory):
    """A LLaDA directory as a bf16 LlamaForCausalLM on the GPU (eval mode), and its config.json."""
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM

    directory = Path(directory)
    config = read_config(directory)
    if not is_llada(config):
        raise CheckpointError(f"{directory / 'config.json'}: model_type is {config.get('model_type')!r}, "
                              "not 'llada'")
    llama_config = llama_config_for_llada(config, directory / "config.json")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # parameters are created in bf16 (RoPE's inv_freq stays f32)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(llama_config)
    finally:
        torch.set_default_dtype(previous)
    state = {}
    for path in safetensors_files(directory):
        for name, tensor in load_file(str(path), device="cuda").items():
            state[llama_name(name, path)] = tensor
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if llama_config.tie_word_embeddings:
        missing = [n for n in missing if n != "lm_head.weight"]
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{n} {tuple(state[n].shape)} (expected {tuple(expected[n].shape)})"
             for n in state if n in expected and state[n].shape != expected[n].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{directory}: tensors do not match config.json: missing {missing[:4]}, "
                              f"unexpected {unexpected[:4]}, wrong shape {wrong[:4]}")
    model.load_state_dict(state, strict=False)  # strict but for a tied lm_head, checked above
    del state
    model.eval().requires_grad_(False)
    return model, config


def load_causal_lm(directory):
    """Any transformers causal LM directory (e.g. Qwen2.5), bf16 on the GPU, SDPA attention; and config.json."""
    from transformers import AutoModelForCausalLM

    config = read_config(directory)
    if is_llada(config):
        raise CheckpointError(f"{directory}: a LLaDA checkpoint, not an autoregressive model")
    safetensors_files(directory)  # a clear error before transformers' own
    # device_map loads straight onto the GPU but needs accelerate; without it the weights go through the host.
    placement = {"device_map": "cuda"} if importlib.util.find_spec("accelerate") else {}
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.bfloat16, attn_implementation="sdpa",
                                                 **placement)
    model.to("cuda").eval().requires_grad_(False)
    return model, config
