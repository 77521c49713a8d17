#include "backbones/llama_weights.h"

#include <fmt/format.h>

#include "backbones/weight_collector.h"

namespace dlm {

namespace {

LinearWeights linear(WeightCollector& weights, const std::string& prefix, int64_t out, int64_t in,
                     bool with_bias) {
  LinearWeights linear{weights.require(prefix + ".weight", Shape{out, in}), std::nullopt};
  if (with_bias) linear.bias = weights.require(prefix + ".bias", Shape{out});
  return linear;
}

}  // namespace

LlamaWeights load_llama_weights(const Checkpoint& checkpoint, const LlamaConfig& config,
                                const std::string& what) {
  WeightCollector weights(checkpoint);
  const int64_t hidden = config.hidden_size;
  const int64_t q_width = config.num_attention_heads * config.head_dim;
  const int64_t kv_width = config.num_key_value_heads * config.head_dim;

  LlamaWeights out;
  out.embed_tokens = weights.require("model.embed_tokens.weight", Shape{config.vocab_size, hidden});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string prefix = fmt::format("model.layers.{}.", i);
    const std::string attention = prefix + "self_attn.";
    const std::string mlp = prefix + "mlp.";
    LlamaLayerWeights layer;
    layer.input_norm = weights.require(prefix + "input_layernorm.weight", Shape{hidden});
    layer.q = linear(weights, attention + "q_proj", q_width, hidden, config.attention_bias);
    layer.k = linear(weights, attention + "k_proj", kv_width, hidden, config.attention_bias);
    layer.v = linear(weights, attention + "v_proj", kv_width, hidden, config.attention_bias);
    layer.o = linear(weights, attention + "o_proj", hidden, q_width, config.attention_bias);
    layer.post_attention_norm = weights.require(prefix + "post_attention_layernorm.weight", Shape{hidden});
    layer.gate = linear(weights, mlp + "gate_proj", config.intermediate_size, hidden, config.mlp_bias);
    layer.up = linear(weights, mlp + "up_proj", config.intermediate_size, hidden, config.mlp_bias);
    layer.down = linear(weights, mlp + "down_proj", hidden, config.intermediate_size, config.mlp_bias);
    out.layers.push_back(std::move(layer));
  }
  out.norm = weights.require("model.norm.weight", Shape{hidden});
  out.lm_head = config.tie_word_embeddings
                    ? out.embed_tokens
                    : weights.require("lm_head.weight", Shape{config.vocab_size, hidden});
  weights.finish(what);
  return out;
}

}  // namespace dlm
