#include "backbones/model_family.h"

#include <fmt/format.h>

#include "backbones/hf_format.h"
#include "backbones/llada_format.h"
#include "engine/core/error.h"

namespace dlm {

namespace {

using enum CheckpointFormat;
using enum DecodingKind;
using enum VisibilityKind;

constexpr FamilyTraits kFamilies[] = {
    {ModelFamily::Llama, "llama", "llama", "Llama", HfLlama, Autoregressive, Causal, ""},
    {ModelFamily::Qwen2, "qwen2", "qwen2", "Qwen2", HfQwen2, Autoregressive, Causal, ""},
    {ModelFamily::Qwen3, "qwen3", "qwen3", "Qwen3", HfQwen3, Autoregressive, Causal, ""},
    {ModelFamily::Llada, "llada", "llada", "LLaDA", Llada, MaskedDiffusion, Bidirectional, ""},
    {ModelFamily::Dream, "dream", "Dream", "Dream", HfQwen2, MaskedDiffusion, Bidirectional, ""},
    {ModelFamily::Sdar, "sdar", "sdar", "SDAR", HfQwen3, BlockDiffusion, BlockCausal, "block_size"},
    {ModelFamily::FastDllmV2, "fast_dllm_v2", "Fast_dLLM_Qwen", "Fast-dLLM v2", HfQwen2, BlockDiffusion,
     BlockCausal, "bd_size"},
};

}  // namespace

const FamilyTraits& identify_family(const HfConfig& config) {
  const std::string model_type = config.required<std::string>("model_type");
  for (const FamilyTraits& family : kFamilies) {
    if (family.model_type == model_type) return family;
  }
  std::vector<std::string_view> supported;
  for (const FamilyTraits& family : kFamilies) supported.push_back(family.model_type);
  fail_input("{}: model_type '{}' is not supported (supported: {})", config.source(), model_type,
             fmt::join(supported, ", "));
}

TransformerConfig read_transformer_config(const FamilyTraits& family, const HfConfig& config) {
  switch (family.format) {
    case CheckpointFormat::HfLlama:
      return read_hf_transformer_config(config, HfAttentionStyle::Llama);
    case CheckpointFormat::HfQwen2:
      return read_hf_transformer_config(config, HfAttentionStyle::Qwen2);
    case CheckpointFormat::HfQwen3:
      return read_hf_transformer_config(config, HfAttentionStyle::Qwen3);
    case CheckpointFormat::Llada:
      return read_llada_config(config);
  }
  fail("unknown checkpoint format");
}

std::string_view decoding_name(DecodingKind kind) {
  switch (kind) {
    case DecodingKind::Autoregressive:
      return "autoregressive";
    case DecodingKind::MaskedDiffusion:
      return "masked diffusion";
    case DecodingKind::BlockDiffusion:
      return "block diffusion";
  }
  return "?";
}

std::string_view visibility_name(VisibilityKind kind) {
  switch (kind) {
    case VisibilityKind::Bidirectional:
      return "bidirectional";
    case VisibilityKind::Causal:
      return "causal";
    case VisibilityKind::BlockCausal:
      return "block-causal";
    case VisibilityKind::SlidingWindow:
      return "sliding-window";
  }
  return "?";
}

}  // namespace dlm
