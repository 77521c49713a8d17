#include "backbones/hf_format.h"

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
  c.num_kv_heads = config.value_or<int64_t>("num_key_value_heads", c.num_heads);
  if (config.has("head_dim")) {
    c.head_dim = config.required<int64_t>("head_dim");
  } else if (c.num_heads > 0 && c.hidden_size % c.num_heads == 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  } else {
    fail_input("{}: hidden_size {} is not a multiple of num_attention_heads {} and head_dim is not given",
               config.source(), c.hidden_size, c.num_heads);
  }
  c.rms_norm_eps = static_cast<float>(config.value_or<double>("rms_norm_eps", 1e-6));
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
