#pragma once
// The dense transformer backbone (transformer_config.h) on the op layer. The visibility rule comes from the
// caller (LLaDA and Dream run bidirectionally, SDAR block-causally, the AR families causally). Weights stay
// in the checkpoint's dtype: views into its memory map on the CPU, one copy in device memory on a device
// backend, where the activations, the caches and the outputs live as well. Activations (and the K/V cache)
// are f32, or bf16 as ActivationPrecision resolves; logits are f32.
#include <span>
#include <string>

#include "backbones/arena.h"
#include "backbones/backbone.h"
#include "backbones/forward_recorder.h"
#include "backbones/kv_cache.h"
#include "backbones/transformer_config.h"
#include "backbones/transformer_weights.h"
#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"

namespace dlm {

class TransformerModel final : public Backbone {
 public:
  // Takes ownership of the checkpoint, whose mapping the weights view (on a device backend: are copied
  // from); `what` names it in errors.
  TransformerModel(Backend& backend, const TransformerConfig& config, Checkpoint checkpoint,
                   const TransformerTensorNames& names, const std::string& what,
                   ActivationPrecision precision = ActivationPrecision::Auto);

  const TransformerConfig& config() const { return config_; }
  const TransformerWeights& weights() const { return weights_; }
  // How its forwards were queued: op by op, recorded or replayed (ForwardRecorder).
  const ForwardRecorder::Counts& recording_counts() const { return recorder_.counts(); }
  // Which projection groups run as one product (their weights lie back to back).
  struct JoinedProjections {
    bool qkv = false, gate_up = false;
  };
  JoinedProjections joined_projections() const { return {!qkv_.empty(), !gate_up_.empty()}; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_positions; }
  std::unique_ptr<SequenceCache> new_cache(int64_t capacity) override;
  ForwardResult forward(const ForwardBatch& batch) override;
  BackboneSummary summary() const override;

 private:
  struct Activations;
  // Where each sequence's keys come from in one call: the same for every layer, so it is worked out once.
  // Keys are gathered per sequence into one ragged tensor: cached positions first, then (Read) the
  // sequence's own rows. Commit and Replace write the rows into the cache first and attend to the cache.
  struct KeyPlan {
    struct Segment {
      KvCache* cache;  // null: rows [begin, end) of this call; else cached positions [begin, end)
      int64_t begin, end;
    };
    struct Write {
      KvCache* cache;
      int64_t row, position, count;  // rows [row, row + count) go to positions [position, position + count)
    };
    bool direct = true;  // no sequence uses a cache: the keys are the rows themselves
    // One sequence attending to its cache alone reads the cache rows in place; anything else is gathered.
    bool gathers() const { return !direct && !(segments.size() == 1 && segments.front().cache != nullptr); }
    // The write that takes all `rows` of the call where it is the only one and attention reads its cache in
    // place, else null.
    const Write* sole_write(int64_t rows) const {
      const bool sole = !direct && !gathers() && writes.size() == 1 && writes.front().row == 0 &&
                        writes.front().count == rows;
      return sole ? &writes.front() : nullptr;
    }
    std::vector<Segment> segments;
    std::vector<Write> writes;
    std::vector<int32_t> key_offsets{0}, key_positions;
    // The batch's visibility, or bidirectional where every query sees every key (ops::simplified_visibility).
    Visibility visibility;
    std::vector<std::pair<KvCache*, int64_t>> new_lengths;

    void clear();  // keeps the capacity: a decoding loop plans without allocating once warmed up
  };

  void plan_keys(const ForwardBatch& batch, KeyPlan& plan) const;
  // plan_keys' segments, writes and keys where some sequence uses a cache.
  void plan_cached_keys(const ForwardBatch& batch, KeyPlan& plan) const;
  // host_indices_ copied into staging_ (pinned where the backend pins), the source of the forward's one
  // upload; waits first for a replay that may still read it.
  Tensor stage_indices();
  // What the layers' queued work depends on besides device memory and the staged indices (ForwardRecorder):
  // the addresses of the tensors, staging and cache rows it touches, the sizes, and the host's decisions
  // (visibility, per-sequence offsets, the key plan). `layer_indices`: the staged indices the layers read.
  void forward_signature(const ForwardBatch& batch, const KeyPlan& plan, const Activations& acts,
                         int64_t layer_indices, std::vector<int64_t>& out) const;
  // The layers' backend work (their indices already uploaded), then the head's: the final norm and the LM
  // head on the logit rows, and the statistics.
  void queue_layers(const ForwardBatch& batch, const KeyPlan& plan, const Activations& acts);
  void queue_head(const ForwardBatch& batch, const Activations& acts);
  // Attention from acts.normed (the layer's input, normed), then the residual add fused with the
  // post-attention norm.
  void attention_block(int64_t layer, const Activations& acts, const KeyPlan& plan,
                       const ForwardBatch& batch);
  // `rows_cached`: the rows' keys and values are already where the plan writes them.
  void attend(int64_t layer, const Activations& acts, const KeyPlan& plan, std::span<const int32_t> offsets,
              const AttentionParams& params, bool rows_cached);
  // The MLP from acts.normed, then the residual add, fused with the next layer's input norm if there is one.
  void mlp_block(int64_t layer, const Activations& acts);

  Backend& backend_;
  TransformerConfig config_;
  Checkpoint checkpoint_;
  TransformerWeights weights_;  // on the backend's device
  DType activations_;           // resolved from the ActivationPrecision once
  HostTensor host_inv_freq_;
  Tensor inv_freq_;  // f32 [rotary_dim / 2] on the backend's device
  RopeParams rope_;
  Buffer device_weights_;  // a device backend's copy of the weights and inv_freq_; empty on the CPU
  // Per layer, the q, k and v projections as one ([(heads + 2 kv_heads) head_dim, hidden]), and gate and up
  // as one ([2 intermediate, hidden]); empty unless every layer stores them back to back (the device copy
  // always does) and, for q/k/v, the model has no QK-norm.
  std::vector<LinearWeights> qkv_, gate_up_;
  Arena arena_;
  KeyPlan plan_;                       // reused across calls
  std::vector<int32_t> host_indices_;  // a call's i32 inputs, packed for one copy; reused across calls
  Buffer staging_;                     // host_indices_ where the upload reads them (Backend::allocate_host)
  bool staging_in_flight_ = false;     // a replay queued since the last wait may still read staging_
  ForwardRecorder recorder_;
  std::vector<int64_t> signature_;                        // the current forward's, reused across calls
  std::vector<Tensor> copy_sources_, copy_destinations_;  // a layer's cache writes or gathers, as one batch
};

}  // namespace dlm
