#pragma once
// Llama-family weights (Hugging Face names) as zero-copy views into the checkpoint, validated against the
// config: every missing tensor and every shape mismatch is reported at once.
#include <optional>
#include <string>
#include <vector>

#include "backbones/llama_config.h"
#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace dlm {

struct LinearWeights {
  Tensor weight;  // [out, in]
  std::optional<Tensor> bias;
};

struct LlamaLayerWeights {
  Tensor input_norm;           // [hidden]
  LinearWeights q, k, v, o;    // q [heads*head_dim, hidden], k/v [kv_heads*head_dim, hidden], o [hidden, ...]
  Tensor post_attention_norm;  // [hidden]
  LinearWeights gate, up;      // [intermediate, hidden]
  LinearWeights down;          // [hidden, intermediate]
};

struct LlamaWeights {
  Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LlamaLayerWeights> layers;
  Tensor norm;     // [hidden]
  Tensor lm_head;  // [vocab, hidden]; the embedding table when the config ties them
};

// `what` names the checkpoint in errors (e.g. the model directory).
LlamaWeights load_llama_weights(const Checkpoint& checkpoint, const LlamaConfig& config,
                                const std::string& what);

}  // namespace dlm
