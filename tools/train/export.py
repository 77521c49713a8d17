#!/usr/bin/env python3
"""Exports a model trained by train.py into the Hugging Face-style layout dlm loads, with reference logits
for the engine's parity test.

  python3 tools/train/export.py --objective diffusion --trained RUN --data DATA --out models/dlm-diffusion-12m
                                --golden tests/golden/default_models/dlm-diffusion-12m.safetensors

Weights are rounded to bf16 and written in shards of at most 14 MB (model-0000k-of-0000n.safetensors with
model.safetensors.index.json). The diffusion model is written in LLaDA's format (model_type "llada", OLMo-style
keys, tied embeddings, mask_token_id), so dlm decodes it as masked diffusion; the AR model in Llama's; the
block-diffusion model in SDAR's (model_type "sdar": Qwen3 names and keys, block_size, mask_token_id), so dlm
decodes it block by block. All ship the SentencePiece tokenizer.model of the dataset.

The golden file holds, for a few prompts, "<case>.input_ids" [T] and "<case>.logits" [T, V]: the f32 logits of
the trained network with the bf16-rounded weights, as dlm runs it: bidirectional for the diffusion model and
block-causal for the block-diffusion one (blocks from position 0; both the prompt followed by mask tokens),
causal for the AR model (the prompt followed by its answer).
"""

import argparse
import json
import shutil
from pathlib import Path

import sentencepiece as spm
import torch
from safetensors.torch import save_file

from train import architecture

MAX_SHARD_BYTES = 14_000_000
LLADA_LAYER_NAMES = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ff_norm.weight",
                     "self_attn.q_proj.weight": "q_proj.weight", "self_attn.k_proj.weight": "k_proj.weight",
                     "self_attn.v_proj.weight": "v_proj.weight", "self_attn.o_proj.weight": "attn_out.weight",
                     "mlp.gate_proj.weight": "ff_proj.weight", "mlp.up_proj.weight": "up_proj.weight",
                     "mlp.down_proj.weight": "ff_out.weight"}


def llada_name(name):
    if name == "model.embed_tokens.weight":
        return "model.transformer.wte.weight"
    if name == "model.norm.weight":
        return "model.transformer.ln_f.weight"
    _, _, index, rest = name.split(".", 3)
    return f"model.transformer.blocks.{index}.{LLADA_LAYER_NAMES[rest]}"


def write_shards(tensors, directory):
    shards, current, size = [], {}, 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > MAX_SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards, 1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / file), metadata={"format": "pt"})
        weight_map.update({name: file for name in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")


def golden_cases(objective, tokenizer, data):
    """Prompts from the test split, one per task, plus a prose prefix."""
    mask = tokenizer.piece_to_id("<|mdm_mask|>")
    seen, cases = set(), {}
    for line in (Path(data) / "tasks_test.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["task"] in seen or record["task"] == "sudoku9":
            continue
        seen.add(record["task"])
        prompt = [tokenizer.bos_id()] + tokenizer.encode(record["prompt"])
        answer = tokenizer.encode(record["answer"]) + [tokenizer.eos_id()]
        cases[record["task"]] = prompt + (answer if objective == "ar" else [mask] * len(answer))
    prose = (Path(data) / "prose_valid.txt").read_text(encoding="utf-8").splitlines()[0]
    cases["prose"] = ([tokenizer.bos_id()] + tokenizer.encode(prose))[:32]
    return cases


def visibility(objective, length, block_size):
    """The additive [1, 1, T, T] attention mask of the model as dlm runs it; None: transformers' causal one."""
    if objective == "ar":
        return None
    allowed = torch.ones(length, length, dtype=torch.bool)
    if objective == "block":
        block = torch.arange(length) // block_size
        allowed = block[None, :] <= block[:, None]
    return torch.zeros(length, length).masked_fill(~allowed, torch.finfo(torch.float32).min)[None, None]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objective", choices=["diffusion", "ar", "block"], required=True)
    parser.add_argument("--trained", required=True, help="train.py's output directory")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--golden", required=True)
    args = parser.parse_args()

    trained = torch.load(Path(args.trained) / "model.pt", map_location="cpu")
    config_class, model_class = architecture(args.objective)
    config = config_class.from_dict(trained["config"])
    model = model_class._from_config(config, attn_implementation="eager")
    model.load_state_dict(trained["state_dict"])
    model.eval()
    with torch.no_grad():  # the shipped values, so the references below describe exactly them
        for parameter in model.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).to(torch.float32))
    tokenizer = spm.SentencePieceProcessor(model_file=str(Path(args.data) / "tokenizer.model"))

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    common = {"bos_token_id": tokenizer.bos_id(), "eos_token_id": tokenizer.eos_id(),
              "pad_token_id": tokenizer.pad_id(), "torch_dtype": "bfloat16"}
    if args.objective == "diffusion":
        write_shards({llada_name(k): v for k, v in state.items()}, out)
        config_json = {
            "architectures": ["LLaDAModelLM"], "model_type": "llada", "d_model": config.hidden_size,
            "n_heads": config.num_attention_heads, "n_kv_heads": config.num_key_value_heads,
            "n_layers": config.num_hidden_layers, "mlp_hidden_size": config.intermediate_size, "mlp_ratio": 4,
            "vocab_size": config.vocab_size, "embedding_size": config.vocab_size,
            "max_sequence_length": config.max_position_embeddings, "rope": True,
            "rope_theta": config.rope_parameters["rope_theta"], "rope_full_precision": True,
            "rms_norm_eps": config.rms_norm_eps, "block_type": "llama", "block_group_size": 1,
            "activation_type": "silu", "layer_norm_type": "rms", "layer_norm_with_affine": True,
            "bias_for_layer_norm": False, "include_bias": False, "include_qkv_bias": False, "weight_tying": True,
            "alibi": False, "attention_layer_norm": False, "input_emb_norm": False, "scale_logits": False,
            "multi_query_attention": None, "use_cache": False,
            "mask_token_id": tokenizer.piece_to_id("<|mdm_mask|>"), **common,
        }
    elif args.objective == "block":
        write_shards(state, out)
        config_json = {**config.to_dict(), **common, "architectures": ["SDARForCausalLM"], "model_type": "sdar",
                       "block_size": trained["block_size"], "mask_token_id": tokenizer.piece_to_id("<|mdm_mask|>")}
    else:
        write_shards(state, out)
        config_json = {**config.to_dict(), **common, "architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (out / "config.json").write_text(json.dumps(config_json, indent=2, sort_keys=True) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": tokenizer.bos_id(), "eos_token_id": tokenizer.eos_id(),
         "pad_token_id": tokenizer.pad_id()}, indent=2) + "\n")
    shutil.copy(Path(args.data) / "tokenizer.model", out / "tokenizer.model")

    tensors = {}
    with torch.no_grad():
        for name, ids in golden_cases(args.objective, tokenizer, args.data).items():
            x = torch.tensor([ids])
            mask = visibility(args.objective, len(ids), trained.get("block_size"))
            tensors[f"{name}.input_ids"] = x[0].to(torch.int32)
            tensors[f"{name}.logits"] = model(x, attention_mask=mask).logits[0].float().contiguous()
    Path(args.golden).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, args.golden, metadata={"cases": ",".join(sorted({k.split(".")[0] for k in tensors})),
                                              "objective": args.objective})
    print(f"exported {out} and {args.golden}")


if __name__ == "__main__":
    main()
