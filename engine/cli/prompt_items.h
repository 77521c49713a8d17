#pragma once
// The prompts of a run: from -p flags, a text file (one prompt per line) or a JSON Lines file (one object
// per line: "id", one of "prompt", "messages" or "prompt_ids", "expected", and per-item settings). A line
// that cannot be read becomes an item holding its error, so one bad line costs only its own result.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backbones/chat_template.h"
#include "engine/io/yaml_config.h"

namespace dlm::cli {

struct PromptItem {
  nlohmann::ordered_json id;          // JSONL "id" (string or integer) as given; else the 0-based item index
  std::string source;                 // names the item in errors: "prompts.jsonl:12", "-p #2"
  std::string prompt;                 // plain text (empty when `messages` or `prompt_ids` is given)
  std::vector<int32_t> prompt_ids;    // token ids, used as they are (no BOS is added)
  std::vector<ChatMessage> messages;  // a conversation, rendered with the model's chat template
  std::optional<std::string> expected;  // the reference answer, for exact-match scoring
  std::optional<YamlMap> settings;      // per-item keys: "seed" and the sampler keys, as a YAML map
  std::string error;                    // not empty: the line is unusable and becomes an error record

  bool ok() const { return error.empty(); }
};

// The items of a prompts file: JSON Lines when the name ends in .jsonl, text lines otherwise. InputError
// naming the file when it cannot be read at all (missing, not text); a malformed JSONL line, an item without
// "prompt" or "messages", a duplicate id or an unknown key yields an item with its error instead.
std::vector<PromptItem> read_prompt_items(const std::string& path);

enum class PromptsFormat { TextLines, JsonLines };
// The same from text already read; `name` names it in errors.
std::vector<PromptItem> parse_prompt_items(std::string_view text, const std::string& name, PromptsFormat format);

// The file's items (when `path` is not empty) followed by one item per -p prompt; ids of text items are their
// index in this list. InputError when there are no prompts at all.
std::vector<PromptItem> collect_prompt_items(const std::string& path,
                                             const std::vector<std::string>& prompts);

}  // namespace dlm::cli
