#pragma once
// The model families a Hugging Face model directory can hold, recognized by config.json's model_type, and
// what each implies for decoding: how it was trained to attend and which sampler family drives it.
#include <cstdint>
#include <string_view>

#include "backbones/transformer_config.h"
#include "engine/io/hf_config.h"
#include "engine/ops/op_types.h"

namespace dlm {

enum class ModelFamily : uint8_t { Llama, Qwen2, Qwen3, Llada, Dream, Sdar, FastDllmV2 };

enum class DecodingKind : uint8_t {
  Autoregressive,   // one token per step, causal attention
  MaskedDiffusion,  // the whole canvas denoised bidirectionally (LLaDA, Dream)
  BlockDiffusion,   // blocks left to right, bidirectional inside a block, causal across (SDAR, Fast-dLLM v2)
};

// Which reader understands the config and which tensor names the checkpoint uses.
enum class CheckpointFormat : uint8_t {
  HfLlama,  // LlamaForCausalLM names and keys
  HfQwen2,  // Qwen2ForCausalLM (also Dream and Fast-dLLM v2)
  HfQwen3,  // Qwen3ForCausalLM (also SDAR)
  Llada,    // LLaDA's remote code: OLMo-style keys and names
};

struct FamilyTraits {
  ModelFamily family;
  std::string_view name;        // "llada": also names the built-in overlay configs/models/<name>.yaml
  std::string_view model_type;  // config.json's model_type
  std::string_view title;       // "LLaDA", for people
  CheckpointFormat format;
  DecodingKind decoding;
  VisibilityKind attention;         // how the family was trained to attend
  std::string_view block_size_key;  // the config.json key of a block-diffusion family's block size, if any
};

// The family of a config.json; InputError naming the file, its model_type and the supported ones.
const FamilyTraits& identify_family(const HfConfig& config);
// The family's config.json read by its format's reader (hf_format.h or llada_format.h).
TransformerConfig read_transformer_config(const FamilyTraits& family, const HfConfig& config);
std::string_view decoding_name(DecodingKind kind);
std::string_view visibility_name(VisibilityKind kind);

}  // namespace dlm
