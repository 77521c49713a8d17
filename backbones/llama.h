#pragma once
// The Llama family as a dense transformer on the op layer: pre-norm blocks of RMSNorm, self-attention with
// RoPE and grouped-query heads, and a SwiGLU MLP; final RMSNorm and LM head. The visibility rule comes from
// the caller (LLaDA runs this architecture bidirectionally). Activations are f32; weights stay in the
// checkpoint's dtype as views into its memory map.
#include "backbones/arena.h"
#include "backbones/backbone.h"
#include "backbones/llama_config.h"
#include "backbones/llama_weights.h"
#include "engine/backend/backend.h"
#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"

namespace dlm {

class LlamaModel final : public Backbone {
 public:
  // Takes ownership of the checkpoint, whose mapping the weights view; `what` names it in errors.
  LlamaModel(Backend& backend, const LlamaConfig& config, Checkpoint checkpoint, const std::string& what);

  const LlamaConfig& config() const { return config_; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  Tensor forward(const ForwardBatch& batch) override;

 private:
  struct Activations;

  void attention_block(const LlamaLayerWeights& layer, const Activations& acts, const AttentionBatch& ragged,
                       const Visibility& visibility);
  void mlp_block(const LlamaLayerWeights& layer, const Activations& acts);

  Backend& backend_;
  LlamaConfig config_;
  Checkpoint checkpoint_;
  LlamaWeights weights_;
  HostTensor inv_freq_;  // [head_dim / 2]
  Arena arena_;
};

}  // namespace dlm
