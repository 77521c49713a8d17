#pragma once
// The config.json of transformers' own decoder classes (LlamaForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM) and of the remote-code models built on them (Dream on Qwen2, Fast-dLLM v2 on Qwen2,
// SDAR on Qwen3), read into a TransformerConfig. Keys absent from the file take the defaults of the
// transformers config class, as transformers itself does.
#include "backbones/transformer_config.h"
#include "engine/io/hf_config.h"

namespace dlm {

// Which transformers class's attention the config describes.
enum class HfAttentionStyle : uint8_t {
  Llama,  // biases from attention_bias (q, k, v, o) and mlp_bias
  Qwen2,  // q, k and v always biased, o never
  Qwen3,  // per-head QK-norm; biases from attention_bias (q, k, v, o)
};

// InputError naming the file and key for a missing, mistyped or inconsistent value, and for features the
// dense transformer does not implement (a non-SiLU activation, sliding-window layers, an unsupported RoPE
// type).
TransformerConfig read_hf_transformer_config(const HfConfig& config, HfAttentionStyle style);

}  // namespace dlm
