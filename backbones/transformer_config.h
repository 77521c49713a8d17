#pragma once
// The dense decoder-only transformer every supported family shares (Llama, Qwen2, Qwen3, LLaDA, Dream, SDAR,
// Fast-dLLM v2): pre-norm blocks of RMSNorm, self-attention with RoPE over grouped-query heads (optional
// QKV bias and per-head QK-norm) and a SwiGLU MLP, then a final RMSNorm and the LM head. The families differ
// in config keys, tensor names and how they attend; the format readers (hf_format, llada_format) fill this.
#include <cstdint>

#include "backbones/rope_scaling.h"
#include "engine/io/hf_config.h"

namespace dlm {

struct TransformerConfig {
  int64_t vocab_size = 0;  // rows of the embedding table and of the LM head: logits per row
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_positions = 0;
  float rms_norm_eps = 1e-6f;
  RopeScaling rope;
  bool qkv_bias = false;  // q, k and v projections
  bool o_bias = false;    // attention output projection
  bool mlp_bias = false;  // gate, up and down projections
  bool qk_norm = false;   // RMSNorm over each head of q and k before RoPE (Qwen3, SDAR)
  bool tie_word_embeddings = false;
};

// InputError naming `source` for values no model could have: a non-positive size, heads not divisible by
// KV heads, an odd head size.
void validate(const TransformerConfig& config, std::string_view source);

// The config's "rms_norm_eps", or `fallback` where it is absent (positive_f32_setting's bounds).
float read_rms_norm_eps(const HfConfig& config, double fallback);

}  // namespace dlm
