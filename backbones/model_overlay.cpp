#include "backbones/model_overlay.h"

#include "backbones/builtin_overlays.h"
#include "engine/io/generation_config.h"
#include "engine/io/yaml_config.h"

namespace dlm {

namespace {

ChatTemplate read_chat(const YamlMap& chat) {
  ChatTemplate out;
  auto turn = [&](std::string_view role) {
    std::string text = chat.required<std::string>(role);
    if (text.find("{content}") == std::string::npos)
      chat.fail_at(role, "must contain {content}, where the message's text goes");
    return text;
  };
  out.system = turn("system");
  out.user = turn("user");
  out.assistant = turn("assistant");
  out.generation = chat.required<std::string>("generation");
  out.default_system = chat.optional<std::string>("default_system");
  return out;
}

ModelOverlay read_overlay(const YamlMap& root) {
  ModelOverlay overlay;
  overlay.source = root.source();
  overlay.mask_token = root.optional<std::string>("mask_token");
  overlay.mask_token_id = root.optional<int64_t>("mask_token_id");
  if (overlay.mask_token && overlay.mask_token_id)
    root.fail_at("mask_token_id", "give the mask token either by text (mask_token) or by id, not both");
  if (overlay.mask_token_id && *overlay.mask_token_id < 0)
    root.fail_at("mask_token_id", "must not be negative");
  overlay.stop_tokens = root.value_or("stop_tokens", overlay.stop_tokens);
  overlay.stop_token_ids = root.value_or("stop_token_ids", overlay.stop_token_ids);
  for (int64_t id : overlay.stop_token_ids) {
    if (id < 0) root.fail_at("stop_token_ids", "ids must not be negative");
  }
  overlay.logit_shift = root.optional<int64_t>("logit_shift");
  if (overlay.logit_shift && *overlay.logit_shift != 0 && *overlay.logit_shift != 1)
    root.fail_at("logit_shift", "must be 0 or 1");
  overlay.block_size = root.optional<int64_t>("block_size");
  if (overlay.block_size && *overlay.block_size < 1) root.fail_at("block_size", "must be at least 1");
  if (std::optional<YamlMap> chat = root.optional_map("chat")) overlay.chat = read_chat(*chat);
  overlay.sampler = root.optional_map("sampler");
  if (overlay.sampler) {
    SamplingConfig defaults;
    read_sampler_keys(*overlay.sampler, defaults);
    if (std::optional<SamplingProblem> problem = find_problem(defaults))
      overlay.sampler->fail_at(problem->key, problem->message);
  }
  root.finish();
  return overlay;
}

}  // namespace

ModelOverlay load_model_overlay(const std::string& path) {
  return read_overlay(YamlMap::load(path));
}

ModelOverlay parse_model_overlay(std::string_view text, std::string source) {
  return read_overlay(YamlMap::parse(text, std::move(source)));
}

ModelOverlay builtin_model_overlay(std::string_view family) {
  for (const BuiltinFile& file : kBuiltinOverlays) {
    if (file.name == family)
      return parse_model_overlay(file.text, "configs/models/" + std::string(family) + ".yaml");
  }
  ModelOverlay empty;
  empty.source = "no built-in overlay";
  return empty;
}

}  // namespace dlm
