#include "backbones/llama.h"

#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/linear.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"

namespace dlm {

struct LlamaModel::Activations {
  Tensor ids, positions, offsets, rows;  // i32 [T], [T], [B+1], [N]
  Tensor hidden;                         // [T, hidden]: the residual stream
  Tensor normed;                         // [T, hidden]: norm outputs, then projection outputs
  Tensor q, k, v;                        // [T, heads, head_dim], [T, kv_heads, head_dim] x2
  Tensor attention;                      // [T, heads, head_dim]
  Tensor gate, up, act;                  // [T, intermediate]
  Tensor gathered, gathered_normed;      // [N, hidden]
  Tensor logits;                         // [N, vocab]
};

namespace {

Tensor host_view(const std::vector<int32_t>& values) {
  // Read-only source of a copy: the const_cast never leads to a write.
  return Tensor(const_cast<int32_t*>(values.data()), DType::I32, Shape{static_cast<int64_t>(values.size())});
}

}  // namespace

LlamaModel::LlamaModel(Backend& backend, const LlamaConfig& config, Checkpoint checkpoint,
                       const std::string& what)
    : backend_(backend),
      config_(config),
      checkpoint_(std::move(checkpoint)),
      weights_(load_llama_weights(checkpoint_, config_, what)),
      inv_freq_(ops::default_rope_inv_freq(config_.rope_theta, config_.head_dim)),
      arena_(backend) {
  // The weights are views into the host mapping; a device backend would need them uploaded first.
  if (backend.device().kind != DeviceKind::Cpu) {
    fail("{}: the Llama backbone runs on the CPU backend only for now, not on {}", what,
         device_name(backend.device()));
  }
}

Tensor LlamaModel::forward(const ForwardBatch& batch) {
  validate_forward_batch(batch, config_.vocab_size, config_.max_position_embeddings);
  const int64_t tokens = batch.tokens();
  const int64_t rows = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t hidden = config_.hidden_size;
  const int64_t heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t head_dim = config_.head_dim;
  const int64_t intermediate = config_.intermediate_size;

  const Activations acts = arena_.build([&](ArenaCarver& carver) {
    Activations a;
    a.ids = carver.take(DType::I32, Shape{tokens});
    a.positions = carver.take(DType::I32, Shape{tokens});
    a.offsets = carver.take(DType::I32, Shape{batch.sequences() + 1});
    a.rows = carver.take(DType::I32, Shape{rows});
    a.hidden = carver.take(DType::F32, Shape{tokens, hidden});
    a.normed = carver.take(DType::F32, Shape{tokens, hidden});
    a.q = carver.take(DType::F32, Shape{tokens, heads, head_dim});
    a.k = carver.take(DType::F32, Shape{tokens, kv_heads, head_dim});
    a.v = carver.take(DType::F32, Shape{tokens, kv_heads, head_dim});
    a.attention = carver.take(DType::F32, Shape{tokens, heads, head_dim});
    a.gate = carver.take(DType::F32, Shape{tokens, intermediate});
    a.up = carver.take(DType::F32, Shape{tokens, intermediate});
    a.act = carver.take(DType::F32, Shape{tokens, intermediate});
    a.gathered = carver.take(DType::F32, Shape{rows, hidden});
    a.gathered_normed = carver.take(DType::F32, Shape{rows, hidden});
    a.logits = carver.take(DType::F32, Shape{rows, config_.vocab_size});
    return a;
  });
  // Without a cache nothing outlives the call, so a call that asks for no logits has nothing to compute.
  if (rows == 0) return acts.logits;

  backend_.copy(host_view(batch.token_ids), acts.ids);
  backend_.copy(host_view(batch.positions), acts.positions);
  backend_.copy(host_view(batch.offsets), acts.offsets);
  backend_.copy(host_view(batch.logit_rows), acts.rows);
  // Without a cache the queries are the keys: the same offsets and positions on both sides.
  const AttentionBatch ragged{acts.offsets, acts.offsets, acts.positions, acts.positions};

  ops::embedding(backend_, weights_.embed_tokens, acts.ids, acts.hidden);
  for (const LlamaLayerWeights& layer : weights_.layers) {
    attention_block(layer, acts, ragged, batch.visibility);
    mlp_block(layer, acts);
  }
  // Only the requested rows go through the final norm and the LM head (both are row-wise); the gather is an
  // embedding lookup with the hidden states as the table.
  ops::embedding(backend_, acts.hidden, acts.rows, acts.gathered);
  ops::rms_norm(backend_, acts.gathered, weights_.norm, config_.rms_norm_eps, NormWeight::Plain,
                acts.gathered_normed);
  ops::linear(backend_, acts.gathered_normed, weights_.lm_head, std::nullopt, acts.logits);
  return acts.logits;
}

void LlamaModel::attention_block(const LlamaLayerWeights& layer, const Activations& acts,
                                 const AttentionBatch& ragged, const Visibility& visibility) {
  const int64_t tokens = acts.hidden.dim(0);
  const float eps = config_.rms_norm_eps;
  ops::rms_norm(backend_, acts.hidden, layer.input_norm, eps, NormWeight::Plain, acts.normed);
  auto flat = [tokens](const Tensor& t) { return t.reshape(Shape{tokens, t.numel() / tokens}); };
  ops::linear(backend_, acts.normed, layer.q.weight, layer.q.bias, flat(acts.q));
  ops::linear(backend_, acts.normed, layer.k.weight, layer.k.bias, flat(acts.k));
  ops::linear(backend_, acts.normed, layer.v.weight, layer.v.bias, flat(acts.v));

  const RopeParams rope{RopeLayout::HalfSplit, config_.head_dim, 1.0f};
  ops::rope(backend_, acts.q, acts.positions, inv_freq_, rope, acts.q);
  ops::rope(backend_, acts.k, acts.positions, inv_freq_, rope, acts.k);
  ops::attention(backend_, acts.q, acts.k, acts.v, ragged, AttentionParams{visibility, 0.0f, 0.0f},
                 acts.attention);

  ops::linear(backend_, flat(acts.attention), layer.o.weight, layer.o.bias, acts.normed);
  ops::add(backend_, acts.hidden, acts.normed, acts.hidden);
}

void LlamaModel::mlp_block(const LlamaLayerWeights& layer, const Activations& acts) {
  ops::rms_norm(backend_, acts.hidden, layer.post_attention_norm, config_.rms_norm_eps, NormWeight::Plain,
                acts.normed);
  ops::linear(backend_, acts.normed, layer.gate.weight, layer.gate.bias, acts.gate);
  ops::linear(backend_, acts.normed, layer.up.weight, layer.up.bias, acts.up);
  ops::swiglu(backend_, acts.gate, acts.up, acts.act);
  ops::linear(backend_, acts.act, layer.down.weight, layer.down.bias, acts.normed);
  ops::add(backend_, acts.hidden, acts.normed, acts.hidden);
}

}  // namespace dlm
