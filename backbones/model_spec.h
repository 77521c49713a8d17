#pragma once
// What a sampler needs to know about a model beyond its backbone: how it attends, its special tokens, and
// the decoding defaults of its family. Resolved from the model directory's files and the overlays.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backbones/model_family.h"
#include "backbones/model_overlay.h"
#include "engine/tokenizer/tokenizer.h"

namespace dlm {

struct ModelSpec {
  const FamilyTraits* family = nullptr;
  std::string architecture;  // config.json's architectures[0], else its model_type
  Visibility visibility;     // how the model attends when decoding; block-causal carries block_size
  std::optional<int32_t> mask_token_id;
  std::optional<int32_t> bos_token_id, pad_token_id;
  std::vector<int32_t> stop_token_ids;  // any of them ends a sequence; the tokenizer's EOS first
  int64_t logit_shift = 0;              // 1: position i's logits come from output row i - 1
  int64_t block_size = 0;               // block diffusion's default block; 0 for other families
  ChatTemplate chat;                    // empty: none
  std::vector<YamlMap> sampler_layers;  // the overlays' sampler sections, built-in first
};

// Special ids come from, highest precedence first: the user overlay, the checkpoint (config.json's
// mask_token_id / *_token_id, generation_config.json's eos_token_id list, the tokenizer's special tokens),
// then the family's built-in overlay. Stop tokens are the union of all these sources. The built-in chat
// template applies only when the tokenizer has every <|...|> token it names. Sampler sections stack, the
// user's over the built-in. Text tokens of the
// built-in overlay that the tokenizer lacks are skipped (a base model may lack a chat model's tokens); those
// of a user overlay are errors. InputError names the overlay or file and the token for an id outside
// [0, vocab_size), a diffusion family without a mask token, or a block-diffusion family without a block size.
ModelSpec resolve_model_spec(const FamilyTraits& family, const HfConfig& config,
                             const std::optional<HfConfig>& generation_config, const Tokenizer& tokenizer,
                             int64_t vocab_size, const ModelOverlay& builtin, const ModelOverlay* user);

}  // namespace dlm
