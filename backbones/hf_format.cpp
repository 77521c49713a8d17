#include "backbones/hf_format.h"

#include <algorithm>

#include "engine/core/error.h"

namespace dlm {

TransformerConfig read_hf_transformer_config(const HfConfig& config, HfAttentionStyle style) {
  TransformerConfig c;
  c.vocab_size = config.required<int64_t>("vocab_size");
  c.hidden_size = config.required<int64_t>("hidden_size");
  c.intermediate_size = config.required<int64_t>("intermediate_size");
  c.num_layers = config.required<int64_t>("num_hidden_layers");
  c.num_heads = config.required<int64_t>("num_attention_heads");
  c.max_positions = config.required<int64_t>("max_position_embeddings");
  // Null means one KV head per query head in every config class; an absent key takes the class default,
  // which is that too for Llama but 32 for Qwen2 and Qwen3.
  const std::vector<std::string> keys = config.keys();
  const bool kv_heads_written = std::binary_search(keys.begin(), keys.end(), "num_key_value_heads");
  const int64_t kv_heads_default = kv_heads_written || style == HfAttentionStyle::Llama ? c.num_heads : 32;
  c.num_kv_heads = config.value_or<int64_t>("num_key_value_heads", kv_heads_default);
  if (config.has("head_dim")) {
    c.head_dim = config.required<int64_t>("head_dim");
  } else if (style == HfAttentionStyle::Qwen3) {
    c.head_dim = 128;  // Qwen3Config declares head_dim = 128 rather than deriving it
  } else if (c.num_heads > 0 && c.hidden_size % c.num_heads == 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  } else {
    fail_input("{}: hidden_size {} is not a multiple of num_attention_heads {} and head_dim is not given",
               config.source(), c.hidden_size, c.num_heads);
  }
  c.rms_norm_eps = read_rms_norm_eps(config, 1e-6);
  c.tie_word_embeddings = config.value_or<bool>("tie_word_embeddings", false);
  c.rope = read_rope_scaling(config, 10000.0, c.max_positions);

  switch (style) {
    case HfAttentionStyle::Llama:
      c.qkv_bias = c.o_bias = config.value_or<bool>("attention_bias", false);
      c.mlp_bias = config.value_or<bool>("mlp_bias", false);
      break;
    case HfAttentionStyle::Qwen2:
      c.qkv_bias = true;
      break;
    case HfAttentionStyle::Qwen3:
      c.qkv_bias = c.o_bias = config.value_or<bool>("attention_bias", false);
      c.qk_norm = true;
      break;
  }
  const std::string activation = config.value_or<std::string>("hidden_act", "silu");
  if (activation != "silu") {
    fail_input("{}: hidden_act '{}' is not supported (the dense transformer's MLP is SwiGLU: 'silu')",
               config.source(), activation);
  }
  if (config.value_or<bool>("use_sliding_window", false)) {
    fail_input("{}: use_sliding_window is true, but sliding-window layers are not supported",
               config.source());
  }
  validate(c, config.source());
  return c;
}

}  // namespace dlm
