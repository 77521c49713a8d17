#pragma once
// The dense transformer backbone (transformer_config.h) on the op layer. The visibility rule comes from the
// caller (LLaDA and Dream run bidirectionally, SDAR block-causally, the AR families causally). Activations
// are f32; weights stay in the checkpoint's dtype as views into its memory map.
#include <string>

#include "backbones/arena.h"
#include "backbones/backbone.h"
#include "backbones/kv_cache.h"
#include "backbones/transformer_config.h"
#include "backbones/transformer_weights.h"
#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"

namespace dlm {

class TransformerModel final : public Backbone {
 public:
  // Takes ownership of the checkpoint, whose mapping the weights view; `what` names it in errors.
  TransformerModel(Backend& backend, const TransformerConfig& config, Checkpoint checkpoint,
                   const TransformerTensorNames& names, const std::string& what);

  const TransformerConfig& config() const { return config_; }
  const TransformerWeights& weights() const { return weights_; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_positions; }
  std::unique_ptr<SequenceCache> new_cache(int64_t capacity) override;
  ForwardResult forward(const ForwardBatch& batch) override;
  BackboneSummary summary() const override;

 private:
  struct Activations;
  struct KeyPlan;

  KeyPlan plan_keys(const ForwardBatch& batch) const;
  void attention_block(int64_t layer, const Activations& acts, const KeyPlan& plan,
                       const ForwardBatch& batch);
  void attend(int64_t layer, const Activations& acts, const KeyPlan& plan, const AttentionParams& params);
  void mlp_block(const TransformerLayerWeights& layer, const Activations& acts);

  Backend& backend_;
  TransformerConfig config_;
  Checkpoint checkpoint_;
  TransformerWeights weights_;
  HostTensor inv_freq_;  // [rotary_dim / 2]
  RopeParams rope_;
  Arena arena_;
};

}  // namespace dlm
