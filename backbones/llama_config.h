#pragma once
// The Llama family's config.json, typed. Keys absent from the file take the defaults of transformers'
// LlamaConfig, as transformers itself does.
#include <cstdint>

#include "engine/io/hf_config.h"

namespace dlm {

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // default: num_attention_heads
  int64_t head_dim = 0;             // default: hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  float rms_norm_eps = 1e-6f;
  bool attention_bias = false;  // q, k, v and o projections
  bool mlp_bias = false;        // gate, up and down projections
  bool tie_word_embeddings = false;

  // InputError naming the file and key for a missing, mistyped or inconsistent value, and for features this
  // backbone does not implement (a non-SiLU activation, RoPE scaling).
  static LlamaConfig from_hf(const HfConfig& config);
};

}  // namespace dlm
