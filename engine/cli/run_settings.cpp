#include "engine/cli/run_settings.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/core/error.h"

namespace dlm::cli {

RunConfigFile load_run_config(const std::string& path) {
  const YamlMap root = YamlMap::load(path);
  RunConfigFile file{read_generation_config(root), root.optional_map("sampler")};
  root.finish();
  return file;
}

ItemSettings item_settings(const Engine& engine, const SettingsLayers& layers, const PromptItem* item) {
  ItemSettings out;
  out.sampling = engine.default_sampling();
  if (layers.config_sampler) read_sampler_keys(*layers.config_sampler, out.sampling);
  apply_sampler_flags(layers.flags, out.sampling);
  out.seed = layers.seed;
  std::string source = "the run's settings (model defaults, --config and flags)";
  if (item && item->settings) {
    read_sampler_keys(*item->settings, out.sampling);
    out.seed = item->settings->value_or("seed", out.seed);
    source = fmt::format("{} (the item's settings over the run's)", item->source);
  }
  validate(out.sampling, source);
  out.sampling = engine.resolve(out.sampling);
  return out;
}

GenerationRequest item_request(const Engine& engine, const PromptItem& item, const ItemSettings& settings,
                               bool chat) {
  if (!item.prompt_ids.empty()) {
    if (chat) fail_input("--chat applies to text prompts, not to \"prompt_ids\"");
    return engine.make_request(item.prompt_ids, settings.sampling, settings.seed);
  }
  return engine.make_request(item_prompt_text(engine, item, chat), settings.sampling, settings.seed);
}

std::string item_error_text(const PromptItem& item, const InputError& error) {
  const std::string message = error.what();
  return message.starts_with(item.source) ? message : fmt::format("{}: {}", item.source, message);
}

void add_to_group(std::vector<RequestGroup>& groups, const ItemSettings& settings, GenerationRequest request,
                  size_t slot) {
  auto group = std::find_if(groups.begin(), groups.end(),
                            [&](const RequestGroup& g) { return g.settings.sampling == settings.sampling; });
  if (group == groups.end()) group = groups.insert(groups.end(), RequestGroup{settings, {}, {}});
  group->requests.push_back(std::move(request));
  group->slots.push_back(slot);
}

std::string item_prompt_text(const Engine& engine, const PromptItem& item, bool chat) {
  if (item.messages.empty() && !chat) return item.prompt;
  const ChatTemplate& templ = engine.spec().chat;
  if (templ.empty()) {
    fail_input(
        "{}: this model has no chat template (give one in the 'chat' section of a --model-config "
        "overlay){}",
        engine.model_dir(), item.messages.empty() ? "; drop --chat to use the prompt as is" : "");
  }
  if (!item.messages.empty()) return render_chat(templ, item.messages);
  const ChatMessage user{ChatRole::User, item.prompt};
  return render_chat(templ, std::span(&user, 1));
}

}  // namespace dlm::cli
