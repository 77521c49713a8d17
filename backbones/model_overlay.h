#pragma once
// A model overlay: a small YAML file of what a checkpoint's own files may lack for generation. Each family
// has a built-in one (configs/models/<family>.yaml, compiled into the engine), which fills gaps only; a user
// overlay given with --model-config overrides the checkpoint. Keys (all optional; see configs/README.md):
//   mask_token: "<|mdm_mask|>"     the mask token, by text      mask_token_id: 126336   or by id
//   stop_tokens: ["<|eot_id|>"]     tokens that end a sequence   stop_token_ids: [126081] or by id
//   logit_shift: 1                  position i is predicted from output row i - 1 (Dream, Fast-dLLM v2)
//   block_size: 32                  block diffusion's default block
//   chat: {system, user, assistant, generation, default_system}   the chat template, one per role
//   sampler: {steps: 64, ...}       the model's sampling defaults (the keys of a run config's sampler
//   section)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backbones/chat_template.h"
#include "engine/io/yaml_config.h"

namespace dlm {

struct ModelOverlay {
  std::string source;  // names the overlay in errors
  std::optional<std::string> mask_token;
  std::optional<int64_t> mask_token_id;
  std::vector<std::string> stop_tokens;
  std::vector<int64_t> stop_token_ids;
  std::optional<int64_t> logit_shift;
  std::optional<int64_t> block_size;
  std::optional<ChatTemplate> chat;
  std::optional<YamlMap> sampler;  // checked when read; applied by Engine::default_sampling
};

// InputError naming the file, key and line for an unknown key, a mistyped or out-of-range value, a chat
// turn without {content}, or both spellings of the mask token.
ModelOverlay load_model_overlay(const std::string& path);
ModelOverlay parse_model_overlay(std::string_view text, std::string source);

// The built-in overlay of a family (FamilyTraits::name); an empty overlay when the family has none.
ModelOverlay builtin_model_overlay(std::string_view family);

}  // namespace dlm
