#include "backbones/transformer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backbones/device_weights.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/linear.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "engine/ops/vocab.h"

namespace dlm {

struct TransformerModel::Activations {
  Tensor indices;                        // i32: the index arrays below, packed by pack_indices
  Tensor ids, positions, offsets, rows;  // i32 [T], [T], [B+1], [N]
  Tensor key_offsets, key_positions;     // i32 [B+1], [Tk]: only when a sequence uses a cache
  // In the activation dtype:
  Tensor hidden;         // [T, hidden]: the residual stream
  Tensor normed;         // [T, hidden]: norm outputs, then projection outputs
  Tensor qkv;            // [T, (heads + 2 kv_heads) head_dim] with fused q/k/v weights, else empty
  Tensor q, k, v;        // [T, heads, head_dim], [T, kv_heads, head_dim] x2
  Tensor keys, values;   // [Tk, kv_heads, head_dim]: cached and new keys, per sequence
  Tensor attention;      // [T, heads, head_dim]
  Tensor gate_up;        // [T, 2 * intermediate] with fused gate/up weights, else empty
  Tensor gate, up, act;  // [T, intermediate]; gate and up are gate_up's halves where it exists
  Tensor gathered, gathered_normed;  // [N, hidden]
  Tensor logits;                     // f32 [N, vocab]
  VocabStats stats;                  // [N]
};

namespace {

// Rows [begin, begin + count) of a packed index block.
struct PackedRange {
  int64_t begin = 0, count = 0;
  Tensor of(const Tensor& block) const { return block.slice(0, begin, begin + count); }
};

// Appends `values` to `pack` at a 64-byte aligned offset (16 i32), as the arena aligns its tensors.
PackedRange pack_indices(std::vector<int32_t>& pack, const std::vector<int32_t>& values) {
  constexpr size_t kAlignment = 16;
  const PackedRange range{static_cast<int64_t>(pack.size()), static_cast<int64_t>(values.size())};
  pack.insert(pack.end(), values.begin(), values.end());
  pack.resize((pack.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
  return range;
}

// The projections `parts` as one, where their matrices, and their biases if they have any, lie back to back
// in order (join_adjacent); an empty weight otherwise.
template <size_t N>
LinearWeights join_projections(const std::array<const LinearWeights*, N>& parts) {
  LinearWeights joined = *parts[0];
  for (size_t i = 1; i < N; ++i) {
    const LinearWeights& next = *parts[i];
    if (joined.bias.has_value() != next.bias.has_value()) return {};
    joined.weight = join_adjacent(joined.weight, next.weight);
    if (joined.bias) joined.bias = join_adjacent(*joined.bias, *next.bias);
    if (joined.weight.empty() || (joined.bias && joined.bias->empty())) return {};
  }
  return joined;
}

DType resolve_activations(ActivationPrecision precision, const Backend& backend,
                          const TransformerWeights& weights) {
  const bool bf16 = precision == ActivationPrecision::Auto && backend.supports_bf16_activations() &&
                    weights.matrices_are(DType::BF16);
  return bf16 ? DType::BF16 : DType::F32;
}

bool wants_logits(ForwardOutputs outputs) {
  return outputs != ForwardOutputs::Stats;
}
bool wants_stats(ForwardOutputs outputs) {
  return outputs != ForwardOutputs::Logits;
}

}  // namespace

TransformerModel::TransformerModel(Backend& backend, const TransformerConfig& config, Checkpoint checkpoint,
                                   const TransformerTensorNames& names, const std::string& what,
                                   ActivationPrecision precision)
    : backend_(backend),
      config_(config),
      checkpoint_(std::move(checkpoint)),
      weights_(load_transformer_weights(checkpoint_, config_, names, what)),
      activations_(resolve_activations(precision, backend, weights_)),
      host_inv_freq_(config_.rope.inv_freq(config_.head_dim)),
      inv_freq_(host_inv_freq_.tensor()),
      rope_{RopeLayout::HalfSplit, config_.head_dim, config_.rope.attention_factor()},
      arena_(backend),
      recorder_(backend) {
  // On the CPU the weights stay views into the mapping; a device backend gets one copy of them, made once.
  if (backend.device().kind != DeviceKind::Cpu) {
    std::vector<Tensor*> resident = weights_.tensors();
    resident.push_back(&inv_freq_);
    device_weights_ = upload_weights(backend, resident);
  }
  // Projections that read the same input run as one product where every layer stores them back to back
  // (the device copy always does); QK-norm sits between the q/k projections and RoPE, so it keeps them apart.
  const auto join_all = [&](auto parts_of, std::vector<LinearWeights>& joined) {
    for (const TransformerLayerWeights& layer : weights_.layers) {
      LinearWeights one = join_projections(parts_of(layer));
      if (one.weight.empty()) {
        joined.clear();
        return;
      }
      joined.push_back(std::move(one));
    }
  };
  if (!config_.qk_norm) {
    join_all([](const TransformerLayerWeights& l) { return std::array{&l.q, &l.k, &l.v}; }, qkv_);
  }
  join_all([](const TransformerLayerWeights& l) { return std::array{&l.gate, &l.up}; }, gate_up_);
}

std::unique_ptr<SequenceCache> TransformerModel::new_cache(int64_t capacity) {
  DLM_CHECK(capacity >= 0 && capacity <= config_.max_positions,
            "cache capacity {} outside the model's context of {} positions", capacity, config_.max_positions);
  return std::make_unique<KvCache>(backend_, this, config_.num_layers, capacity, config_.num_kv_heads,
                                   config_.head_dim, activations_);
}

BackboneSummary TransformerModel::summary() const {
  const TransformerConfig& c = config_;
  std::string rope = fmt::format("RoPE {} theta {}", rope_type_name(c.rope.type), c.rope.theta);
  if (c.rope.type != RopeType::Default) rope += fmt::format(" factor {}", c.rope.factor);
  std::vector<std::string> extras;
  if (c.qkv_bias) extras.emplace_back("QKV bias");
  if (c.qk_norm) extras.emplace_back("QK-norm");
  extras.emplace_back(c.tie_word_embeddings ? "tied embeddings" : "untied embeddings");
  BackboneSummary summary;
  summary.architecture = fmt::format(
      "dense transformer: {} layers, hidden {}, {} heads ({} KV heads, head size {}), SwiGLU MLP {}, {}, {}, "
      "vocabulary {}, context {}",
      c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim, c.intermediate_size, rope,
      fmt::join(extras, ", "), c.vocab_size, c.max_positions);
  summary.parameters = weights_.parameter_count();
  summary.cache_bytes_per_position =
      KvCache::bytes_per_position(c.num_layers, c.num_kv_heads, c.head_dim, activations_);
  summary.unused_tensors = weights_.unused_tensors;
  for (const std::string& name : checkpoint_.names()) {
    const TensorEntry& entry = checkpoint_.entry(name);
    DTypeBytes& dtype = summary.checkpoint_dtypes[std::string(dtype_name(entry.dtype))];
    ++dtype.tensors;
    dtype.bytes += static_cast<int64_t>(entry.end - entry.begin);
  }
  return summary;
}

void TransformerModel::KeyPlan::clear() {
  direct = true;
  segments.clear();
  writes.clear();
  key_offsets.assign(1, 0);
  key_positions.clear();
  new_lengths.clear();
}

void TransformerModel::plan_keys(const ForwardBatch& batch, KeyPlan& plan) const {
  plan.clear();
  const bool cached = std::any_of(batch.caches.begin(), batch.caches.end(),
                                  [](const CacheUse& use) { return use.policy != CachePolicy::None; });
  if (cached) plan_cached_keys(batch, plan);
  // A direct plan's sequences attend to their own rows.
  plan.visibility = ops::simplified_visibility(batch.visibility, batch.offsets, batch.positions,
                                               plan.direct ? batch.offsets : plan.key_offsets,
                                               plan.direct ? batch.positions : plan.key_positions);
}

void TransformerModel::plan_cached_keys(const ForwardBatch& batch, KeyPlan& plan) const {
  plan.direct = false;
  for (int64_t b = 0; b < batch.sequences(); ++b) {
    const CacheUse& use = batch.caches[static_cast<size_t>(b)];
    const int64_t first = batch.offsets[static_cast<size_t>(b)];
    const int64_t last = batch.offsets[static_cast<size_t>(b) + 1];
    auto add_rows = [&] {
      plan.segments.push_back({nullptr, first, last});
      for (int64_t row = first; row < last; ++row) plan.key_positions.push_back(batch.positions[row]);
    };
    if (use.policy == CachePolicy::None) {
      add_rows();
    } else {
      auto* cache = dynamic_cast<KvCache*>(use.cache);
      DLM_CHECK(cache != nullptr && cache->owner() == this, "sequence {} uses a cache made by another model",
                b);
      int64_t length = cache->length();
      if (use.policy != CachePolicy::Read) {
        // Runs of rows at consecutive positions become one copy each.
        for (int64_t row = first; row < last;) {
          int64_t end = row + 1;
          while (end < last && batch.positions[end] == batch.positions[end - 1] + 1) ++end;
          plan.writes.push_back({cache, row, batch.positions[row], end - row});
          length = std::max<int64_t>(length, batch.positions[end - 1] + 1);
          row = end;
        }
        plan.new_lengths.emplace_back(cache, length);
      }
      plan.segments.push_back({cache, 0, length});
      for (int64_t position = 0; position < length; ++position)
        plan.key_positions.push_back(static_cast<int32_t>(position));
      if (use.policy == CachePolicy::Read) add_rows();
    }
    plan.key_offsets.push_back(static_cast<int32_t>(plan.key_positions.size()));
  }
}

ForwardResult TransformerModel::forward(const ForwardBatch& batch) {
  validate_forward_batch(batch, config_.vocab_size, config_.max_positions);
  plan_keys(batch, plan_);
  const KeyPlan& plan = plan_;
  const int64_t tokens = batch.tokens();
  const int64_t keys = plan.direct ? tokens : static_cast<int64_t>(plan.key_positions.size());
  const int64_t rows = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t hidden = config_.hidden_size;
  const int64_t heads = config_.num_heads;
  const int64_t kv_heads = config_.num_kv_heads;
  const int64_t head_dim = config_.head_dim;
  const int64_t intermediate = config_.intermediate_size;
  const bool logits_wanted = wants_logits(batch.outputs);
  const bool stats_wanted = wants_stats(batch.outputs);

  // The i32 inputs reach the backend in one copy: first the layers' (their sizes follow the shapes), then
  // the logit rows (fewer each step of a schedule that keeps the shapes).
  host_indices_.clear();
  const PackedRange ids_at = pack_indices(host_indices_, batch.token_ids);
  const PackedRange positions_at = pack_indices(host_indices_, batch.positions);
  const PackedRange offsets_at = pack_indices(host_indices_, batch.offsets);
  PackedRange key_offsets_at, key_positions_at;
  if (!plan.direct) {
    key_offsets_at = pack_indices(host_indices_, plan.key_offsets);
    key_positions_at = pack_indices(host_indices_, plan.key_positions);
  }
  const PackedRange rows_at = pack_indices(host_indices_, batch.logit_rows);

  Activations acts = arena_.build([&](ArenaCarver& carver) {
    Activations a;
    const DType dtype = activations_;
    if (plan.gathers()) {
      a.keys = carver.take(dtype, Shape{keys, kv_heads, head_dim});
      a.values = carver.take(dtype, Shape{keys, kv_heads, head_dim});
    }
    a.hidden = carver.take(dtype, Shape{tokens, hidden});
    a.normed = carver.take(dtype, Shape{tokens, hidden});
    if (!qkv_.empty()) a.qkv = carver.take(dtype, Shape{tokens, (heads + 2 * kv_heads) * head_dim});
    a.q = carver.take(dtype, Shape{tokens, heads, head_dim});
    a.k = carver.take(dtype, Shape{tokens, kv_heads, head_dim});
    a.v = carver.take(dtype, Shape{tokens, kv_heads, head_dim});
    a.attention = carver.take(dtype, Shape{tokens, heads, head_dim});
    if (gate_up_.empty()) {
      a.gate = carver.take(dtype, Shape{tokens, intermediate});
      a.up = carver.take(dtype, Shape{tokens, intermediate});
    } else {
      a.gate_up = carver.take(dtype, Shape{tokens, 2 * intermediate});
      a.gate = a.gate_up.slice(1, 0, intermediate);
      a.up = a.gate_up.slice(1, intermediate, 2 * intermediate);
    }
    a.act = carver.take(dtype, Shape{tokens, intermediate});
    // What the logit rows change comes last, so the layers' tensors stay where they were.
    a.indices = carver.take(DType::I32, Shape{static_cast<int64_t>(host_indices_.size())});
    a.gathered = carver.take(dtype, Shape{rows, hidden});
    a.gathered_normed = carver.take(dtype, Shape{rows, hidden});
    a.logits = carver.take(DType::F32, Shape{rows, config_.vocab_size});  // f32 whatever the activations
    if (stats_wanted) {
      a.stats.argmax = carver.take(DType::I32, Shape{rows});
      a.stats.max_prob = carver.take(DType::F32, Shape{rows});
      a.stats.entropy = carver.take(DType::F32, Shape{rows});
      a.stats.margin = carver.take(DType::F32, Shape{rows});
    }
    return a;
  });
  acts.ids = ids_at.of(acts.indices);
  acts.positions = positions_at.of(acts.indices);
  acts.offsets = offsets_at.of(acts.indices);
  acts.rows = rows_at.of(acts.indices);
  if (!plan.direct) {
    acts.key_offsets = key_offsets_at.of(acts.indices);
    acts.key_positions = key_positions_at.of(acts.indices);
  }
  ForwardResult result;
  if (logits_wanted) result.logits = acts.logits;
  if (stats_wanted) result.stats = acts.stats;
  // A call that asks for no logits and writes no cache has nothing to compute.
  if (rows == 0 && plan.writes.empty()) return result;

  const Tensor staged = stage_indices();
  if (batch.observer || !backend_.records_work()) {
    backend_.copy(staged, acts.indices);
    queue_layers(batch, plan, acts);
  } else {
    // The layers' work is what repeats (ForwardRecorder); the logit rows go up on their own.
    const int64_t split = rows_at.begin;
    forward_signature(batch, plan, acts, split, signature_);
    staging_in_flight_ = recorder_.run(signature_, [&] {
      backend_.copy(staged.slice(0, 0, split), acts.indices.slice(0, 0, split));
      queue_layers(batch, plan, acts);
    });
    const int64_t end = acts.indices.dim(0);
    if (rows > 0) backend_.copy(staged.slice(0, split, end), acts.indices.slice(0, split, end));
  }
  for (const auto& [cache, length] : plan.new_lengths) cache->set_length(length);
  if (rows > 0) queue_head(batch, acts);
  return result;
}

Tensor TransformerModel::stage_indices() {
  if (staging_in_flight_) {
    backend_.synchronize();
    staging_in_flight_ = false;
  }
  const size_t bytes = host_indices_.size() * sizeof(int32_t);
  if (staging_.bytes() < bytes) staging_ = backend_.allocate_host(std::max(bytes, 2 * staging_.bytes()));
  std::memcpy(staging_.data(), host_indices_.data(), bytes);
  return staging_.view(DType::I32, Shape{static_cast<int64_t>(host_indices_.size())});
}

void TransformerModel::forward_signature(const ForwardBatch& batch, const KeyPlan& plan,
                                         const Activations& acts, int64_t layer_indices,
                                         std::vector<int64_t>& out) const {
  out.clear();
  const auto add = [&](int64_t value) { out.push_back(value); };
  const auto add_address = [&](const void* p) { add(static_cast<int64_t>(reinterpret_cast<intptr_t>(p))); };
  const auto add_all = [&](const std::vector<int32_t>& values) {
    add(static_cast<int64_t>(values.size()));
    out.insert(out.end(), values.begin(), values.end());
  };
  // A cache's rows lie in one buffer, laid out by its capacity.
  const auto add_cache = [&](const KvCache* cache) {
    add_address(cache != nullptr ? cache->keys(0).data() : nullptr);
    add(cache != nullptr ? cache->keys(0).dim(0) : 0);
  };
  add_address(staging_.data());
  add(layer_indices);
  for (const Tensor* t : {&acts.indices, &acts.keys, &acts.values, &acts.hidden, &acts.normed, &acts.q,
                          &acts.k, &acts.v, &acts.attention, &acts.gate, &acts.up, &acts.act}) {
    add_address(t->data());
  }
  add(acts.hidden.dim(0));
  add(acts.keys.empty() ? 0 : acts.keys.dim(0));
  add(static_cast<int64_t>(plan.visibility.kind));
  add(plan.visibility.block_size);
  add(plan.visibility.window);
  add_all(batch.offsets);
  add(plan.direct ? 1 : 0);
  add_all(plan.key_offsets);
  for (const KeyPlan::Write& write : plan.writes) {
    add_cache(write.cache);
    add(write.row);
    add(write.position);
    add(write.count);
  }
  for (const KeyPlan::Segment& segment : plan.segments) {
    add_cache(segment.cache);
    add(segment.begin);
    add(segment.end);
  }
}

void TransformerModel::queue_layers(const ForwardBatch& batch, const KeyPlan& plan, const Activations& acts) {
  ops::embedding(backend_, weights_.embed_tokens, acts.ids, acts.hidden);
  if (batch.observer) batch.observer("embeddings", -1, acts.hidden);
  // Each residual add is fused with the norm after it, so a layer starts from its input already normed.
  const std::vector<TransformerLayerWeights>& layers = weights_.layers;
  if (!layers.empty()) {
    ops::rms_norm(backend_, acts.hidden, layers.front().input_norm, config_.rms_norm_eps, NormWeight::Plain,
                  acts.normed);
  }
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    attention_block(static_cast<int64_t>(layer), acts, plan, batch);
    mlp_block(static_cast<int64_t>(layer), acts);
    if (batch.observer) batch.observer("layer_output", static_cast<int64_t>(layer), acts.hidden);
  }
}

void TransformerModel::queue_head(const ForwardBatch& batch, const Activations& acts) {
  // Only the requested rows go through the final norm and the LM head (both are row-wise); the gather is an
  // embedding lookup with the hidden states as the table.
  ops::embedding(backend_, acts.hidden, acts.rows, acts.gathered);
  ops::rms_norm(backend_, acts.gathered, weights_.norm, config_.rms_norm_eps, NormWeight::Plain,
                acts.gathered_normed);
  ops::linear(backend_, acts.gathered_normed, weights_.lm_head, std::nullopt, acts.logits);
  if (batch.observer) batch.observer("logits", -1, acts.logits);
  if (!acts.stats.argmax.empty()) ops::vocab_stats(backend_, acts.logits, acts.stats);
}

void TransformerModel::attention_block(int64_t index, const Activations& acts, const KeyPlan& plan,
                                       const ForwardBatch& batch) {
  const TransformerLayerWeights& layer = weights_.layers[static_cast<size_t>(index)];
  const int64_t tokens = acts.hidden.dim(0);
  const float eps = config_.rms_norm_eps;
  auto flat = [tokens](const Tensor& t) { return t.reshape(Shape{tokens, t.numel() / tokens}); };
  bool rows_cached = false;  // this layer's keys and values already in the cache rows the plan writes
  if (!acts.qkv.empty()) {
    // One product, then q and k rotated out of its columns and v copied out: into the cache itself where
    // a single write takes every row and attention reads that cache in place (one sequence decoding).
    const LinearWeights& qkv = qkv_[static_cast<size_t>(index)];
    ops::linear(backend_, acts.normed, qkv.weight, qkv.bias, acts.qkv);
    Tensor k = acts.k, v = acts.v;
    if (const KeyPlan::Write* write = plan.sole_write(tokens);
        write != nullptr && write->cache->keys(index).dtype() == k.dtype()) {
      k = write->cache->keys(index).slice(0, write->position, write->position + tokens);
      v = write->cache->values(index).slice(0, write->position, write->position + tokens);
      rows_cached = true;
    }
    ops::rope_qkv(backend_, acts.qkv, acts.positions, inv_freq_, rope_, acts.q, k, v);
  } else {
    ops::linear(backend_, acts.normed, layer.q.weight, layer.q.bias, flat(acts.q));
    ops::linear(backend_, acts.normed, layer.k.weight, layer.k.bias, flat(acts.k));
    ops::linear(backend_, acts.normed, layer.v.weight, layer.v.bias, flat(acts.v));
    if (config_.qk_norm) {
      auto per_head = [](const Tensor& t) { return t.reshape(Shape{t.dim(0) * t.dim(1), t.dim(2)}); };
      ops::rms_norm(backend_, per_head(acts.q), layer.q_norm, eps, NormWeight::Plain, per_head(acts.q));
      ops::rms_norm(backend_, per_head(acts.k), layer.k_norm, eps, NormWeight::Plain, per_head(acts.k));
    }
    ops::rope(backend_, acts.q, acts.positions, inv_freq_, rope_, acts.q);
    ops::rope(backend_, acts.k, acts.positions, inv_freq_, rope_, acts.k);
  }

  attend(index, acts, plan, batch.offsets, AttentionParams{plan.visibility, 0.0f, 0.0f}, rows_cached);
  ops::linear(backend_, flat(acts.attention), layer.o.weight, layer.o.bias, acts.normed);
  if (batch.observer) batch.observer("attention_output", index, acts.normed);
  ops::add_rms_norm(backend_, acts.hidden, acts.normed, layer.post_attention_norm, eps, NormWeight::Plain,
                    acts.hidden, acts.normed);
}

// acts.attention from acts.q and the keys of the plan; writes the rows' keys and values into the caches
// first. `offsets` are the batch's (host) query offsets.
void TransformerModel::attend(int64_t index, const Activations& acts, const KeyPlan& plan,
                              std::span<const int32_t> offsets, const AttentionParams& params,
                              bool rows_cached) {
  if (plan.direct) {
    // Without a cache the queries are the keys: the same offsets and positions on both sides.
    const AttentionBatch ragged{acts.offsets, acts.offsets, acts.positions, acts.positions, offsets, offsets};
    ops::attention(backend_, acts.q, acts.k, acts.v, ragged, params, acts.attention);
    return;
  }
  copy_sources_.clear();
  copy_destinations_.clear();
  for (const KeyPlan::Write& write : rows_cached ? std::span<const KeyPlan::Write>{} : plan.writes) {
    const int64_t position = write.position;
    copy_sources_.push_back(acts.k.slice(0, write.row, write.row + write.count));
    copy_destinations_.push_back(write.cache->keys(index).slice(0, position, position + write.count));
    copy_sources_.push_back(acts.v.slice(0, write.row, write.row + write.count));
    copy_destinations_.push_back(write.cache->values(index).slice(0, position, position + write.count));
  }
  backend_.copy_batch(copy_sources_, copy_destinations_);
  const AttentionBatch ragged{acts.offsets,       acts.key_offsets, acts.positions,
                              acts.key_positions, offsets,          plan.key_offsets};
  if (!plan.gathers()) {
    const KeyPlan::Segment& only = plan.segments.front();
    ops::attention(backend_, acts.q, only.cache->keys(index).slice(0, 0, only.end),
                   only.cache->values(index).slice(0, 0, only.end), ragged, params, acts.attention);
    return;
  }
  // The gathers read what the writes above wrote, so they are a second batch.
  copy_sources_.clear();
  copy_destinations_.clear();
  int64_t next = 0;
  for (const KeyPlan::Segment& segment : plan.segments) {
    const int64_t count = segment.end - segment.begin;
    const Tensor& key_source = segment.cache ? segment.cache->keys(index) : acts.k;
    const Tensor& value_source = segment.cache ? segment.cache->values(index) : acts.v;
    copy_sources_.push_back(key_source.slice(0, segment.begin, segment.end));
    copy_destinations_.push_back(acts.keys.slice(0, next, next + count));
    copy_sources_.push_back(value_source.slice(0, segment.begin, segment.end));
    copy_destinations_.push_back(acts.values.slice(0, next, next + count));
    next += count;
  }
  backend_.copy_batch(copy_sources_, copy_destinations_);
  ops::attention(backend_, acts.q, acts.keys, acts.values, ragged, params, acts.attention);
}

void TransformerModel::mlp_block(int64_t index, const Activations& acts) {
  const auto layer_index = static_cast<size_t>(index);
  const TransformerLayerWeights& layer = weights_.layers[layer_index];
  if (acts.gate_up.empty()) {
    ops::linear(backend_, acts.normed, layer.gate.weight, layer.gate.bias, acts.gate);
    ops::linear(backend_, acts.normed, layer.up.weight, layer.up.bias, acts.up);
  } else {
    const LinearWeights& gate_up = gate_up_[layer_index];
    ops::linear(backend_, acts.normed, gate_up.weight, gate_up.bias, acts.gate_up);
  }
  ops::swiglu(backend_, acts.gate, acts.up, acts.act);
  ops::linear(backend_, acts.act, layer.down.weight, layer.down.bias, acts.normed);
  if (layer_index + 1 == weights_.layers.size()) {
    ops::add(backend_, acts.hidden, acts.normed, acts.hidden);
    return;
  }
  ops::add_rms_norm(backend_, acts.hidden, acts.normed, weights_.layers[layer_index + 1].input_norm,
                    config_.rms_norm_eps, NormWeight::Plain, acts.hidden, acts.normed);
}

}  // namespace dlm
