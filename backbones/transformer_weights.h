#pragma once
// Dense transformer weights as zero-copy views into the checkpoint, gathered under a format's tensor names
// and checked against the config: every missing tensor and every shape or dtype mismatch is reported at once.
#include <optional>
#include <string>
#include <vector>

#include "backbones/transformer_config.h"
#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace dlm {

// Where a format keeps each tensor. Per-layer names hold "{}" where the layer index goes; linear layers are
// named without the ".weight" / ".bias" suffix, norms with it.
struct TransformerTensorNames {
  std::string embed_tokens;  // "model.embed_tokens.weight"
  std::string final_norm;    // "model.norm.weight"
  std::string lm_head;       // "lm_head.weight"; unused when the config ties the embeddings
  std::string input_norm, post_attention_norm;
  std::string q, k, v, o;
  std::string q_norm, k_norm;  // only with qk_norm
  std::string gate, up, down;

  static TransformerTensorNames hugging_face();  // LlamaForCausalLM, Qwen2/Qwen3, Dream, SDAR, Fast-dLLM v2
};

struct LinearWeights {
  Tensor weight;  // [out, in]
  std::optional<Tensor> bias;
};

struct TransformerLayerWeights {
  Tensor input_norm;           // [hidden]
  LinearWeights q, k, v, o;    // q [heads*head_dim, hidden], k/v [kv_heads*head_dim, hidden], o [hidden, ...]
  Tensor q_norm, k_norm;       // [head_dim] with qk_norm, else empty
  Tensor post_attention_norm;  // [hidden]
  LinearWeights gate, up;      // [intermediate, hidden]
  LinearWeights down;          // [hidden, intermediate]
};

struct TransformerWeights {
  Tensor embed_tokens;  // [vocab, hidden]
  std::vector<TransformerLayerWeights> layers;
  Tensor norm;                              // [hidden]
  Tensor lm_head;                           // [vocab, hidden]; the embedding table when the config ties them
  std::vector<std::string> unused_tensors;  // in the checkpoint but not part of the model

  int64_t parameter_count() const;  // each distinct tensor once: tied embeddings count once
  // Whether the embedding table, the LM head and every projection's weight are of `dtype`.
  bool matrices_are(DType dtype) const;
  // Every weight tensor, to move them as a whole (device_weights.h); tied embeddings appear twice.
  std::vector<Tensor*> tensors();
};

// `what` names the checkpoint in errors (e.g. the model directory).
TransformerWeights load_transformer_weights(const Checkpoint& checkpoint, const TransformerConfig& config,
                                            const TransformerTensorNames& names, const std::string& what);

}  // namespace dlm
