#include "backbones/llama_config.h"

#include <string>

#include "engine/core/error.h"

namespace dlm {

namespace {

int64_t positive(const HfConfig& config, std::string_view key, int64_t value) {
  if (value <= 0) fail_input("{}: key '{}' must be positive, got {}", config.source(), key, value);
  return value;
}

// transformers 5 nests RoPE settings in rope_parameters; older files have rope_theta and rope_scaling.
double read_rope_theta(const HfConfig& config) {
  std::optional<HfConfig> parameters = config.optional_object("rope_parameters");
  if (!parameters) parameters = config.optional_object("rope_scaling");
  if (parameters) {
    // Older files spell the key "type".
    const std::string type = parameters->has("rope_type")
                                 ? parameters->required<std::string>("rope_type")
                                 : parameters->value_or<std::string>("type", "default");
    if (type != "default") {
      fail_input("{}: RoPE type '{}' is not supported by the Llama backbone (only 'default')",
                 config.source(), type);
    }
    if (parameters->has("rope_theta")) return parameters->required<double>("rope_theta");
  }
  return config.value_or<double>("rope_theta", 10000.0);
}

}  // namespace

LlamaConfig LlamaConfig::from_hf(const HfConfig& config) {
  LlamaConfig c;
  auto dim = [&](std::string_view key) { return positive(config, key, config.required<int64_t>(key)); };
  c.vocab_size = dim("vocab_size");
  c.hidden_size = dim("hidden_size");
  c.intermediate_size = dim("intermediate_size");
  c.num_hidden_layers = dim("num_hidden_layers");
  c.num_attention_heads = dim("num_attention_heads");
  c.max_position_embeddings = dim("max_position_embeddings");
  c.num_key_value_heads = positive(config, "num_key_value_heads",
                                   config.value_or<int64_t>("num_key_value_heads", c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail_input("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", config.source(),
               c.num_attention_heads, c.num_key_value_heads);
  }
  if (config.has("head_dim")) {
    c.head_dim = dim("head_dim");
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    fail_input("{}: hidden_size {} is not a multiple of num_attention_heads {} and head_dim is not given",
               config.source(), c.hidden_size, c.num_attention_heads);
  } else {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail_input("{}: head_dim {} must be even for RoPE", config.source(), c.head_dim);

  c.rope_theta = read_rope_theta(config);
  if (!(c.rope_theta > 0.0))
    fail_input("{}: rope_theta must be positive, got {}", config.source(), c.rope_theta);
  c.rms_norm_eps = static_cast<float>(config.value_or<double>("rms_norm_eps", 1e-6));
  if (!(c.rms_norm_eps > 0.0f)) {
    fail_input("{}: rms_norm_eps must be positive, got {}", config.source(), c.rms_norm_eps);
  }
  c.attention_bias = config.value_or<bool>("attention_bias", false);
  c.mlp_bias = config.value_or<bool>("mlp_bias", false);
  c.tie_word_embeddings = config.value_or<bool>("tie_word_embeddings", false);
  const std::string activation = config.value_or<std::string>("hidden_act", "silu");
  if (activation != "silu") {
    fail_input("{}: hidden_act '{}' is not supported by the Llama backbone (only 'silu')", config.source(),
               activation);
  }
  return c;
}

}  // namespace dlm
