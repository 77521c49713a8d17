#pragma once
// A run's sampling settings, built in layers, each over the one before: the built-in defaults, the model's
// metadata (its method and block size, its overlays' `sampler` sections), the --config file's `sampler`
// section, the command-line flags, and last an item's own keys (a JSONL line's "steps", "seed", ...).
#include <cstdint>
#include <optional>

#include "engine/cli/prompt_items.h"
#include "engine/cli/sampler_flags.h"
#include "engine/io/yaml_config.h"
#include "engine/runtime/engine.h"

namespace dlm::cli {

struct SettingsLayers {
  std::optional<YamlMap> config_sampler;  // the --config file's sampler section, when it has one
  SamplerFlags flags;
  uint64_t seed = 0;  // the run's seed (defaults < --config < --seed)
};

// A --config file: its run keys, with its sampler section kept as a layer (the model's defaults go beneath it
// once the model is loaded). InputError as load_generation_config.
struct RunConfigFile {
  GenerationConfig config;
  std::optional<YamlMap> sampler;
};
RunConfigFile load_run_config(const std::string& path);

struct ItemSettings {
  SamplingConfig sampling;  // resolved for the engine's model (Engine::resolve)
  uint64_t seed = 0;
};

// The settings `item` decodes with (the run's alone when item is null). InputError naming the layer and the
// key when the result is invalid or the model cannot decode with it.
ItemSettings item_settings(const Engine& engine, const SettingsLayers& layers, const PromptItem* item);

// The request of `item` under its settings: its prompt ids as they are, or its text (item_prompt_text)
// through Engine::make_request. InputError when it does not fit the model.
GenerationRequest item_request(const Engine& engine, const PromptItem& item, const ItemSettings& settings,
                               bool chat);

// An item's error as a message that names the item (its file and line) first.
std::string item_error_text(const PromptItem& item, const InputError& error);

// Requests that decode with the same settings run together, in one continuously batched run.
struct RequestGroup {
  ItemSettings settings;
  std::vector<GenerationRequest> requests;
  std::vector<size_t> slots;  // each request's place among the caller's items or outputs
};

// Adds the request to the group of its settings, making one when none has them yet (groups keep the order
// in which their settings first came).
void add_to_group(std::vector<RequestGroup>& groups, const ItemSettings& settings, GenerationRequest request,
                  size_t slot);

// The text the model sees for `item`: its messages, or its prompt when `chat` is set, rendered with the
// model's chat template; its prompt as is otherwise. InputError when a chat is asked of a model without a
// template.
std::string item_prompt_text(const Engine& engine, const PromptItem& item, bool chat);

}  // namespace dlm::cli
