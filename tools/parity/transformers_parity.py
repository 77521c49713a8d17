#!/usr/bin/env python3
"""Tiny random-weight checkpoints and reference logits from transformers, for the backbone parity tests
(tests/parity/transformers_parity_test.cpp).

Usage: python3 tools/parity/transformers_parity.py tests/golden/parity
Needs torch, transformers (pinned: 5.17), tokenizers and safetensors. Runs on CPU in float32.

Writes, under the output directory:
  models/<name>/   Hugging Face model directories (config.json, model.safetensors, tokenizer.json,
                   tokenizer_config.json, generation_config.json where transformers writes one):
      llama        LlamaForCausalLM (GQA), saved with save_pretrained
      qwen2        Qwen2ForCausalLM (GQA, QKV bias, tied embeddings), saved with save_pretrained
      qwen3        Qwen3ForCausalLM (GQA, QK-norm, head_dim 32 != hidden/heads, YaRN RoPE), bf16 weights
      llada        the llama weights in LLaDA's released remote-code format (OLMo-style keys and names)
      dream        the qwen2 weights in Dream's format (model_type "Dream", mask_token_id, untied lm_head)
      fast_dllm_v2 the qwen2 weights in Fast-dLLM v2's format (model_type "Fast_dLLM_Qwen", bd_size)
      sdar         the qwen3 weights in SDAR's format (model_type "sdar", block_size, legacy rope_scaling)
  <base>_logits.safetensors for base in llama, qwen2, qwen3: the references every format of those weights
      must reproduce. Tensor "<case>.<what>"; metadata "cases" lists the cases:
        causal        input_ids [T]; logits [T,V]; hidden.<k> [T,D] = output_hidden_states[k] for k < layers
                      (the embeddings, then each layer's output but the last, which transformers normalizes)
        bidirectional input_ids [T]; logits [T,V]: an all-zero 4-D additive mask
        block_causal  input_ids [T]; logits [T,V]: a block-causal 4-D mask, blocks of BLOCK from position 0
        batch         input_ids.<b> [T_b]; logits.<b> [T_b,V]: causal, prompts of different lengths
        cached        prompt_ids [P], continuation_ids [C]; logits [C,V]: causal, the continuation run
                      through the prompt's DynamicCache
        block_cached  prefix_ids [P], block_ids [BLOCK]; logits [BLOCK,V]: block-causal, the prefix cached,
                      then one block attending to the cache and to itself
  rope_tables.safetensors: "<case>.inv_freq" [head_dim/2] f32 and "<case>.attention_factor" [1] f32 from
      LlamaRotaryEmbedding for the config in metadata "<case>.config" (JSON); metadata "cases" lists them.

Every weight is drawn from a seeded torch.Generator, so a rerun with the same versions writes the same files.
"""

import json
import math
import shutil
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

SEED = 20261128
VOCAB = 320
HIDDEN = 64
HEADS = 4
KV_HEADS = 2
LAYERS = 2
INTERMEDIATE = 96
CONTEXT = 128
BLOCK = 4

CORPUS = [
    "Diffusion language models denoise a whole canvas of masked tokens in parallel, step by step.",
    "An autoregressive model writes one token after another, each conditioned on all before it.",
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.",
    "Block diffusion decodes blocks left to right and denoises the tokens inside each block together.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000; symbols: + - * / = < > ( ) [ ] { }.",
    "Qwen, Llama, LLaDA, Dream, SDAR: names of models with their own tokenizers and templates.",
]

SPECIALS = {
    "llama": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
    "llada": ["<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>"],
    "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "qwen3": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "dream": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"],
    "fast_dllm_v2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "|<MASK>|"],
    "sdar": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|MASK|>"],
}
# (bos, eos, pad, mask) per tokenizer, by text; None where the family has none.
ROLES = {
    "llama": ("<|begin_of_text|>", "<|end_of_text|>", None, None),
    "llada": ("<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|mdm_mask|>"),
    "qwen2": (None, "<|endoftext|>", "<|endoftext|>", None),
    "qwen3": (None, "<|im_end|>", "<|endoftext|>", None),
    "dream": ("<|beginoftext|>", "<|endoftext|>", "<|endoftext|>", "<|mask|>"),
    "fast_dllm_v2": (None, "<|im_end|>", "<|im_end|>", None),
    "sdar": (None, "<|im_end|>", "<|endoftext|>", "<|MASK|>"),
}


def make_tokenizer(name):
    """A byte-level BPE trained on CORPUS with the family's special tokens first."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS[name], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    assert tok.get_vocab_size() <= VOCAB
    bos, eos, pad, mask = ROLES[name]
    kwargs = {k: v for k, v in (("bos_token", bos), ("eos_token", eos), ("pad_token", pad),
                                ("mask_token", mask)) if v is not None}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def token_id(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(text)


def randomize(model, generator):
    """Normal weights; norm weights around 1 so a norm that ignored its weight would show."""
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith(".bias"):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.15 * torch.randn(parameter.shape, generator=generator))


def base_models():
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                  num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                  max_position_embeddings=CONTEXT, hidden_act="silu")
    llama = LlamaConfig(**common, rms_norm_eps=1e-5, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    qwen2 = Qwen2Config(**common, rms_norm_eps=1e-6, tie_word_embeddings=True,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    qwen3 = Qwen3Config(**common, head_dim=32, rms_norm_eps=1e-6, tie_word_embeddings=False,
                        attention_bias=False,
                        rope_parameters={"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                         "original_max_position_embeddings": 32})
    return [("llama", LlamaForCausalLM, llama), ("qwen2", Qwen2ForCausalLM, qwen2),
            ("qwen3", Qwen3ForCausalLM, qwen3)]


def additive_mask(allowed):
    """[Tq,Tk] bool -> [1,1,Tq,Tk] float: 0 where allowed, the dtype minimum elsewhere."""
    mask = torch.zeros(allowed.shape, dtype=torch.float32)
    mask[~allowed] = torch.finfo(torch.float32).min
    return mask[None, None]


def block_causal(query_positions, key_positions):
    return (key_positions[None, :] // BLOCK) <= (query_positions[:, None] // BLOCK)


def references(model, generator):
    """The cases of the module docstring, as a dict of tensors."""
    out = {}
    ids = lambda n: torch.randint(0, VOCAB, (n,), generator=generator, dtype=torch.int64)
    run = lambda x, **kw: model(x[None], **kw)
    with torch.no_grad():
        x = ids(11)
        full = run(x, output_hidden_states=True)
        out["causal.input_ids"] = x
        out["causal.logits"] = full.logits[0]
        for k in range(LAYERS):
            out[f"causal.hidden.{k}"] = full.hidden_states[k][0]
        # The 4-D masks are honoured as additive masks: an explicit causal one reproduces the default.
        positions = torch.arange(11)
        explicit = run(x, attention_mask=additive_mask(positions[None, :] <= positions[:, None])).logits[0]
        assert torch.allclose(explicit, full.logits[0], atol=1e-6), "4-D causal mask not honoured"
        out["bidirectional.input_ids"] = x
        out["bidirectional.logits"] = run(x, attention_mask=additive_mask(
            torch.ones(11, 11, dtype=torch.bool))).logits[0]
        assert not torch.allclose(out["bidirectional.logits"][0], full.logits[0][0]), "mask ignored"

        x = ids(12)
        out["block_causal.input_ids"] = x
        positions = torch.arange(12)
        out["block_causal.logits"] = run(x, attention_mask=additive_mask(
            block_causal(positions, positions))).logits[0]

        for b, length in enumerate([5, 9, 3]):
            x = ids(length)
            out[f"batch.input_ids.{b}"] = x
            out[f"batch.logits.{b}"] = run(x).logits[0]

        prompt, continuation = ids(7), ids(3)
        first = run(prompt, use_cache=True)
        out["cached.prompt_ids"] = prompt
        out["cached.continuation_ids"] = continuation
        out["cached.logits"] = run(continuation, past_key_values=first.past_key_values,
                                   use_cache=True).logits[0]
        whole = run(torch.cat([prompt, continuation])).logits[0][7:]
        assert torch.allclose(whole, out["cached.logits"], atol=1e-4), "cache disagrees with full forward"

        prefix, block = ids(2 * BLOCK), ids(BLOCK)
        prefix_positions = torch.arange(2 * BLOCK)
        first = run(prefix, use_cache=True,
                    attention_mask=additive_mask(block_causal(prefix_positions, prefix_positions)))
        block_positions = torch.arange(2 * BLOCK, 3 * BLOCK)
        out["block_cached.prefix_ids"] = prefix
        out["block_cached.block_ids"] = block
        out["block_cached.logits"] = run(
            block, past_key_values=first.past_key_values, use_cache=True,
            attention_mask=additive_mask(block_causal(block_positions, torch.arange(3 * BLOCK)))).logits[0]
    cases = "causal,bidirectional,block_causal,batch,cached,block_cached"
    return {k: (v.to(torch.int32) if v.dtype == torch.int64 else v.float().contiguous()) for k, v in out.items()}, cases


def save_tokenizer(name, directory):
    tokenizer = make_tokenizer(name)
    tokenizer.save_pretrained(directory)
    return tokenizer


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2) + "\n")


def llada_format(state, config, tokenizer, directory):
    """LLaDA's released layout (configuration_llada.py / modeling_llada.py, block_type "llama")."""
    names = {"model.embed_tokens.weight": "model.transformer.wte.weight",
             "model.norm.weight": "model.transformer.ln_f.weight",
             "lm_head.weight": "model.transformer.ff_out.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ff_norm.weight",
                 "self_attn.q_proj.weight": "q_proj.weight", "self_attn.k_proj.weight": "k_proj.weight",
                 "self_attn.v_proj.weight": "v_proj.weight", "self_attn.o_proj.weight": "attn_out.weight",
                 "mlp.gate_proj.weight": "ff_proj.weight", "mlp.up_proj.weight": "up_proj.weight",
                 "mlp.down_proj.weight": "ff_out.weight"}
    for i in range(LAYERS):
        for hf, llada in per_layer.items():
            names[f"model.layers.{i}.{hf}"] = f"model.transformer.blocks.{i}.{llada}"
    assert set(names) == set(state), sorted(set(state) ^ set(names))
    save_file({names[k]: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(directory / "config.json", {
        "architectures": ["LLaDAModelLM"],
        "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                     "AutoModel": "modeling_llada.LLaDAModelLM",
                     "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"},
        "model_type": "llada", "d_model": HIDDEN, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "n_layers": LAYERS,
        "mlp_hidden_size": INTERMEDIATE, "mlp_ratio": 4, "vocab_size": VOCAB, "embedding_size": VOCAB,
        "max_sequence_length": CONTEXT, "rope": True, "rope_theta": 500000.0, "rope_full_precision": True,
        "rms_norm_eps": config.rms_norm_eps, "block_type": "llama", "block_group_size": 1,
        "activation_type": "silu", "layer_norm_type": "rms", "layer_norm_with_affine": True,
        "bias_for_layer_norm": False, "include_bias": False, "include_qkv_bias": False, "weight_tying": False,
        "alibi": False, "alibi_bias_max": 8.0, "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True, "input_emb_norm": False, "scale_logits": False,
        "multi_query_attention": None, "flash_attention": False, "attention_dropout": 0.0,
        "residual_dropout": 0.0, "embedding_dropout": 0.0, "precision": "amp_bf16", "use_cache": False,
        "mask_token_id": token_id(tokenizer, "<|mdm_mask|>"), "eos_token_id": token_id(tokenizer, "<|endoftext|>"),
        "pad_token_id": token_id(tokenizer, "<|endoftext|>"), "torch_dtype": "float32",
    })


def qwen_format(state, config, directory, extra):
    """Dream / Fast-dLLM v2 / SDAR: transformers' Qwen2/Qwen3 names and keys, legacy RoPE spelling."""
    state = dict(state)
    if "lm_head.weight" not in state:  # the remote-code configs do not tie
        state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    rope = dict(config.rope_parameters)
    theta = rope.pop("rope_theta")
    body = {
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": CONTEXT, "hidden_act": "silu", "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": theta, "rope_scaling": None if rope.get("rope_type") == "default" else rope,
        "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": LAYERS, "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
        "torch_dtype": "float32",
    }
    if getattr(config, "head_dim", None) is not None and config.head_dim != HIDDEN // HEADS:
        body["head_dim"] = config.head_dim
    body.update(extra)
    write_json(directory / "config.json", body)


def rope_tables(path):
    cases = {
        "default_theta10000_d16": dict(hidden_size=64, num_attention_heads=4),
        "default_theta500000_d128": dict(hidden_size=4096, num_attention_heads=32, rope_theta=500000.0),
        "linear_legacy_type": dict(hidden_size=256, num_attention_heads=4, rope_theta=10000.0,
                                   rope_scaling={"type": "linear", "factor": 2.0}),
        "llama3_llama31_8b": dict(hidden_size=4096, num_attention_heads=32, max_position_embeddings=131072,
                                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 8192}),
        "yarn_qwen25_card": dict(hidden_size=3584, num_attention_heads=28, max_position_embeddings=131072,
                                 rope_theta=1000000.0,
                                 rope_scaling={"type": "yarn", "factor": 4.0,
                                               "original_max_position_embeddings": 32768}),
        "yarn_mscale": dict(hidden_size=1024, num_attention_heads=8, max_position_embeddings=163840,
                            rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0,
                                             "mscale": 0.707, "mscale_all_dim": 1.0,
                                             "original_max_position_embeddings": 4096}),
        "yarn_betas_untruncated": dict(hidden_size=512, num_attention_heads=4, max_position_embeddings=8192,
                                       rope_parameters={"rope_type": "yarn", "rope_theta": 50000.0, "factor": 2.0,
                                                        "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False,
                                                        "original_max_position_embeddings": 4096}),
        "yarn_attention_factor": dict(hidden_size=512, num_attention_heads=4, max_position_embeddings=8192,
                                      rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0,
                                                       "attention_factor": 0.8,
                                                       "original_max_position_embeddings": 4096}),
    }
    tensors, metadata = {}, {"cases": ",".join(cases)}
    for name, kwargs in cases.items():
        kwargs = dict(kwargs)
        kwargs.setdefault("max_position_embeddings", 4096)
        config = LlamaConfig(vocab_size=32, intermediate_size=64, num_hidden_layers=1, **kwargs)
        rotary = LlamaRotaryEmbedding(config=config)
        tensors[f"{name}.inv_freq"] = rotary.inv_freq.float().contiguous()
        tensors[f"{name}.attention_factor"] = torch.tensor([float(rotary.attention_scaling)])
        metadata[f"{name}.config"] = json.dumps({"model_type": "llama", **kwargs})
    save_file(tensors, str(path), metadata=metadata)


def main():
    out = Path(sys.argv[1])
    assert transformers.__version__ == "5.17.0", f"pinned to transformers 5.17.0, found {transformers.__version__}"
    torch.use_deterministic_algorithms(True)
    models_dir = out / "models"
    shutil.rmtree(models_dir, ignore_errors=True)
    models_dir.mkdir(parents=True)
    states = {}
    for index, (name, cls, config) in enumerate(base_models()):
        generator = torch.Generator().manual_seed(SEED + index)
        model = cls._from_config(config, attn_implementation="eager").eval()
        randomize(model, generator)
        if name == "qwen3":  # bf16 weights, the f32 references computed from exactly those values
            # Parameters only: casting the module would also round the RoPE frequency buffer.
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.copy_(parameter.to(torch.bfloat16).to(torch.float32))
        tensors, cases = references(model, generator)
        save_file(tensors, str(out / f"{name}_logits.safetensors"),
                  metadata={"cases": cases, "transformers": transformers.__version__, "torch": torch.__version__})
        directory = models_dir / name
        if name == "qwen3":
            model.to(torch.bfloat16).save_pretrained(directory)
        else:
            model.save_pretrained(directory)
        save_tokenizer(name, directory)
        states[name] = {k: v.float() for k, v in load_file(str(next(directory.glob("*.safetensors")))).items()}
        states[name + "_config"] = config

    directory = models_dir / "llada"
    directory.mkdir()
    llada_format(states["llama"], states["llama_config"], save_tokenizer("llada", directory), directory)

    for name, base, extra in [
        ("dream", "qwen2", {"architectures": ["DreamModel"], "model_type": "Dream"}),
        ("fast_dllm_v2", "qwen2", {"architectures": ["Fast_dLLM_QwenForCausalLM"], "model_type": "Fast_dLLM_Qwen",
                                   "bd_size": BLOCK}),
        ("sdar", "qwen3", {"architectures": ["SDARForCausalLM"], "model_type": "sdar", "block_size": BLOCK,
                           "attention_bias": False}),
    ]:
        directory = models_dir / name
        directory.mkdir()
        tokenizer = save_tokenizer(name, directory)
        bos, eos, pad, mask = ROLES[name]
        ids = {"eos_token_id": token_id(tokenizer, eos), "pad_token_id": token_id(tokenizer, pad)}
        if name in ("dream", "sdar"):
            ids["mask_token_id"] = token_id(tokenizer, mask)
        state = states[base]
        if name == "sdar":
            state = {k: v.to(torch.bfloat16) for k, v in state.items()}
        qwen_format(state, states[base + "_config"], directory, {**extra, **ids})

    rope_tables(out / "rope_tables.safetensors")
    print("wrote", out)


if __name__ == "__main__":
    main()
