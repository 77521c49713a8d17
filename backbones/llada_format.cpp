#include "backbones/llada_format.h"

#include <algorithm>

#include "engine/core/error.h"

namespace dlm {

namespace {

// An OLMo option LLaDA's code implements but the released models leave at `expected`.
template <class T>
void require_setting(const HfConfig& config, std::string_view key, T fallback, T expected,
                     std::string_view why) {
  const T value = config.value_or<T>(key, fallback);
  if (value != expected) fail_input("{}: {} = {} is not supported: {}", config.source(), key, value, why);
}

}  // namespace

TransformerConfig read_llada_config(const HfConfig& config) {
  TransformerConfig c;
  c.hidden_size = config.required<int64_t>("d_model");
  c.num_heads = config.required<int64_t>("n_heads");
  c.num_layers = config.required<int64_t>("n_layers");
  // n_kv_heads null means one KV head per query head, unless multi_query_attention asks for a single one.
  c.num_kv_heads = config.value_or<bool>("multi_query_attention", false)
                       ? 1
                       : config.value_or<int64_t>("n_kv_heads", c.num_heads);
  if (c.num_heads > 0 && c.hidden_size % c.num_heads != 0) {
    fail_input("{}: d_model {} is not a multiple of n_heads {}", config.source(), c.hidden_size, c.num_heads);
  }
  c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  if (config.has("mlp_hidden_size")) {
    c.intermediate_size = config.required<int64_t>("mlp_hidden_size");
  } else {
    const int64_t ratio = config.value_or<int64_t>("mlp_ratio", 4);
    if (ratio < 1 || ratio > 64)
      fail_input("{}: mlp_ratio must be in [1, 64], got {}", config.source(), ratio);
    c.intermediate_size = ratio * std::clamp<int64_t>(c.hidden_size, 0, int64_t{1} << 32);
  }
  // The embedding table and the output layer have embedding_size rows (the vocabulary padded to a multiple
  // of 128), and the model returns logits for all of them.
  c.vocab_size = config.has("embedding_size") ? config.required<int64_t>("embedding_size")
                                              : config.required<int64_t>("vocab_size");
  if (config.value_or<int64_t>("vocab_size", 0) > c.vocab_size) {
    fail_input("{}: vocab_size {} exceeds embedding_size {}", config.source(),
               config.required<int64_t>("vocab_size"), c.vocab_size);
  }
  c.max_positions = config.required<int64_t>("max_sequence_length");
  c.rms_norm_eps = read_rms_norm_eps(config, 1e-5);
  c.rope.theta = config.value_or<double>("rope_theta", 10000.0);
  c.qkv_bias = config.value_or<bool>("include_qkv_bias", false);
  c.tie_word_embeddings = config.value_or<bool>("weight_tying", true);  // ModelConfig ties by default

  require_setting<std::string>(
      config, "block_type", "sequential", "llama",
      "only the 'llama' block (separate q/k/v projections) of the released models is");
  require_setting<std::string>(config, "activation_type", "swiglu", "silu",
                               "the llama block's MLP must be SiLU-gated");
  require_setting<std::string>(config, "layer_norm_type", "default", "rms", "the released models use 'rms'");
  require_setting<bool>(config, "include_bias", false, false, "biases on every layer, the norms included");
  // None inherits include_bias, which must be false.
  require_setting<bool>(config, "bias_for_layer_norm", false, false, "biases on the norms");
  require_setting<int64_t>(config, "block_group_size", 1, 1, "blocks grouped under block_groups");
  require_setting<bool>(config, "rope", false, true, "positions must come from RoPE");
  require_setting<bool>(config, "alibi", false, false, "positions must come from RoPE");
  require_setting<bool>(config, "attention_layer_norm", false, false, "QK-norm over the whole projection");
  require_setting<bool>(config, "input_emb_norm", false, false, "embeddings scaled by sqrt(d_model)");
  require_setting<bool>(config, "scale_logits", false, false, "logits scaled by 1/sqrt(d_model)");
  if (config.has("rope_scaling")) {
    fail_input("{}: rope_scaling is not part of LLaDA's config and is not applied", config.source());
  }
  validate(c, config.source());
  return c;
}

TransformerTensorNames llada_tensor_names() {
  TransformerTensorNames names;
  names.embed_tokens = "model.transformer.wte.weight";
  names.final_norm = "model.transformer.ln_f.weight";
  names.lm_head = "model.transformer.ff_out.weight";
  names.input_norm = "model.transformer.blocks.{}.attn_norm.weight";
  names.post_attention_norm = "model.transformer.blocks.{}.ff_norm.weight";
  names.q = "model.transformer.blocks.{}.q_proj";
  names.k = "model.transformer.blocks.{}.k_proj";
  names.v = "model.transformer.blocks.{}.v_proj";
  names.o = "model.transformer.blocks.{}.attn_out";
  names.gate = "model.transformer.blocks.{}.ff_proj";
  names.up = "model.transformer.blocks.{}.up_proj";
  names.down = "model.transformer.blocks.{}.ff_out";
  return names;
}

}  // namespace dlm
