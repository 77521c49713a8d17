#pragma once
// LLaDA's released checkpoint format (remote-code class LLaDAModelLM, model_type "llada"): OLMo-style config
// keys (d_model, n_heads, n_kv_heads, n_layers, mlp_hidden_size, include_bias, weight_tying, ...) and tensor
// names under model.transformer (wte, blocks.{i}.q_proj / attn_out / ff_proj / up_proj / ff_out, ln_f).
// The released models use block_type "llama" (separate q/k/v, SwiGLU of ff_proj as the gate and up_proj);
// other OLMo options are refused by name rather than computed wrongly.
#include "backbones/transformer_config.h"
#include "backbones/transformer_weights.h"
#include "engine/io/hf_config.h"

namespace dlm {

// InputError naming the file and key for a missing or bad value or an option this engine does not implement.
TransformerConfig read_llada_config(const HfConfig& config);
TransformerTensorNames llada_tensor_names();

}  // namespace dlm
