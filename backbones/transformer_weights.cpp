#include "backbones/transformer_weights.h"

#include <fmt/format.h>

#include <array>
#include <set>

#include "backbones/weight_collector.h"

namespace dlm {

TransformerTensorNames TransformerTensorNames::hugging_face() {
  TransformerTensorNames names;
  names.embed_tokens = "model.embed_tokens.weight";
  names.final_norm = "model.norm.weight";
  names.lm_head = "lm_head.weight";
  names.input_norm = "model.layers.{}.input_layernorm.weight";
  names.post_attention_norm = "model.layers.{}.post_attention_layernorm.weight";
  names.q = "model.layers.{}.self_attn.q_proj";
  names.k = "model.layers.{}.self_attn.k_proj";
  names.v = "model.layers.{}.self_attn.v_proj";
  names.o = "model.layers.{}.self_attn.o_proj";
  names.q_norm = "model.layers.{}.self_attn.q_norm.weight";
  names.k_norm = "model.layers.{}.self_attn.k_norm.weight";
  names.gate = "model.layers.{}.mlp.gate_proj";
  names.up = "model.layers.{}.mlp.up_proj";
  names.down = "model.layers.{}.mlp.down_proj";
  return names;
}

namespace {

std::string layer_name(const std::string& pattern, int64_t layer) {
  return fmt::format(fmt::runtime(pattern), layer);
}

LinearWeights linear(WeightCollector& weights, const std::string& name, int64_t out, int64_t in,
                     bool with_bias) {
  LinearWeights linear{weights.require(name + ".weight", Shape{out, in}), std::nullopt};
  if (with_bias) linear.bias = weights.require(name + ".bias", Shape{out});
  return linear;
}

// The seven projections of a layer (const or not).
template <class Layer>
auto projections(Layer& layer) {
  return std::array{&layer.q, &layer.k, &layer.v, &layer.o, &layer.gate, &layer.up, &layer.down};
}

// Calls visit(tensor) for every weight of `weights` (const or not), tied ones as often as they are used. A
// layer's projection matrices come in projection order, then their biases, so that a copy made in this
// order (device_weights.h) stores q, k and v, and gate and up, back to back (the transformer runs each group
// as one product).
template <class Weights, class Visit>
void visit_tensors(Weights& weights, Visit visit) {
  visit(weights.embed_tokens);
  for (auto& layer : weights.layers) {
    visit(layer.input_norm);
    visit(layer.post_attention_norm);
    if (!layer.q_norm.empty()) {
      visit(layer.q_norm);
      visit(layer.k_norm);
    }
    for (auto* linear : projections(layer)) visit(linear->weight);
    for (auto* linear : projections(layer)) {
      if (linear->bias) visit(*linear->bias);
    }
  }
  visit(weights.norm);
  visit(weights.lm_head);
}

}  // namespace

int64_t TransformerWeights::parameter_count() const {
  std::set<const void*> seen;
  int64_t count = 0;
  visit_tensors(*this, [&](const Tensor& t) {
    if (seen.insert(t.data()).second) count += t.numel();
  });
  return count;
}

bool TransformerWeights::matrices_are(DType dtype) const {
  bool all = embed_tokens.dtype() == dtype && lm_head.dtype() == dtype;
  for (const TransformerLayerWeights& layer : layers) {
    for (const LinearWeights* linear : projections(layer)) all = all && linear->weight.dtype() == dtype;
  }
  return all;
}

std::vector<Tensor*> TransformerWeights::tensors() {
  std::vector<Tensor*> all;
  visit_tensors(*this, [&](Tensor& t) { all.push_back(&t); });
  return all;
}

TransformerWeights load_transformer_weights(const Checkpoint& checkpoint, const TransformerConfig& config,
                                            const TransformerTensorNames& names, const std::string& what) {
  WeightCollector weights(checkpoint);
  const int64_t hidden = config.hidden_size;
  const int64_t q_width = config.num_heads * config.head_dim;
  const int64_t kv_width = config.num_kv_heads * config.head_dim;
  const int64_t mlp_width = config.intermediate_size;

  TransformerWeights out;
  out.embed_tokens = weights.require(names.embed_tokens, Shape{config.vocab_size, hidden});
  for (int64_t i = 0; i < config.num_layers; ++i) {
    auto name = [i](const std::string& pattern) { return layer_name(pattern, i); };
    TransformerLayerWeights layer;
    layer.input_norm = weights.require(name(names.input_norm), Shape{hidden});
    layer.q = linear(weights, name(names.q), q_width, hidden, config.qkv_bias);
    layer.k = linear(weights, name(names.k), kv_width, hidden, config.qkv_bias);
    layer.v = linear(weights, name(names.v), kv_width, hidden, config.qkv_bias);
    layer.o = linear(weights, name(names.o), hidden, q_width, config.o_bias);
    if (config.qk_norm) {
      layer.q_norm = weights.require(name(names.q_norm), Shape{config.head_dim});
      layer.k_norm = weights.require(name(names.k_norm), Shape{config.head_dim});
    }
    layer.post_attention_norm = weights.require(name(names.post_attention_norm), Shape{hidden});
    layer.gate = linear(weights, name(names.gate), mlp_width, hidden, config.mlp_bias);
    layer.up = linear(weights, name(names.up), mlp_width, hidden, config.mlp_bias);
    layer.down = linear(weights, name(names.down), hidden, mlp_width, config.mlp_bias);
    out.layers.push_back(std::move(layer));
  }
  out.norm = weights.require(names.final_norm, Shape{hidden});
  out.lm_head = config.tie_word_embeddings ? out.embed_tokens
                                           : weights.require(names.lm_head, Shape{config.vocab_size, hidden});
  weights.finish(what);
  out.unused_tensors = weights.unused();
  return out;
}

}  // namespace dlm
