#include "engine/cli/prompt_items.h"

#include <fmt/format.h>

#include <limits>
#include <map>
#include <string_view>

#include "engine/core/error.h"
#include "engine/core/utf8.h"
#include "engine/io/generation_config.h"
#include "engine/io/text_file.h"

namespace dlm::cli {

namespace {

using Json = nlohmann::ordered_json;

// Calls `visit(line_number, line)` for each line of the file that is not blank; a trailing "\r" is dropped.
// InputError for a NUL byte (not a text file).
template <class Visit>
void for_each_line(const std::string& path, std::string_view text, Visit visit) {
  size_t begin = 0;
  for (int64_t line_number = 1; begin < text.size(); ++line_number) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\0') != std::string_view::npos) {
      fail_input("{}:{}: contains a NUL byte (not a text file)", path, line_number);
    }
    if (line.find_first_not_of(" \t\v\f\r") == std::string_view::npos) continue;
    visit(line_number, line);
  }
}

std::vector<ChatMessage> read_messages(const Json& messages) {
  if (!messages.is_array() || messages.empty()) fail_input("\"messages\" must be a non-empty array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& message = messages[i];
    if (!message.is_object() || !message.contains("role") || !message.contains("content") ||
        message.size() != 2 || !message["role"].is_string() || !message["content"].is_string()) {
      fail_input("messages[{}]: expected {{\"role\": ..., \"content\": ...}} with string values", i);
    }
    const std::optional<ChatRole> role = chat_role(message["role"].get<std::string>());
    if (!role) {
      fail_input("messages[{}]: role must be system, user or assistant, got '{}'", i,
                 message["role"].get<std::string>());
    }
    out.push_back({*role, message["content"].get<std::string>()});
  }
  return out;
}

// Fills `item` from one JSONL object; InputError for anything malformed.
void read_json_item(std::string_view line, PromptItem& item) {
  const Json object = Json::parse(line, nullptr, false);
  if (object.is_discarded()) fail_input("not valid JSON");
  if (!object.is_object()) fail_input("expected a JSON object, got {}", object.type_name());
  Json settings = Json::object();
  for (const auto& [key, value] : object.items()) {
    if (key == "id") {
      if (!value.is_string() && !value.is_number_integer()) {
        fail_input("\"id\" must be a string or an integer, got {}", value.type_name());
      }
      item.id = value;
    } else if (key == "prompt") {
      if (!value.is_string()) fail_input("\"prompt\" must be a string, got {}", value.type_name());
      item.prompt = value.get<std::string>();
    } else if (key == "messages") {
      item.messages = read_messages(value);
    } else if (key == "prompt_ids") {
      if (!value.is_array() || value.empty())
        fail_input("\"prompt_ids\" must be a non-empty array of token ids");
      for (const Json& id : value) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
            id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
          fail_input("\"prompt_ids\" must hold token ids (integers >= 0), got {}", id.dump());
        }
        item.prompt_ids.push_back(id.get<int32_t>());
      }
    } else if (key == "expected") {
      if (!value.is_string()) fail_input("\"expected\" must be a string, got {}", value.type_name());
      item.expected = value.get<std::string>();
    } else {
      settings[key] = value;
    }
  }
  if (object.contains("prompt") + object.contains("messages") + object.contains("prompt_ids") != 1) {
    fail_input("give exactly one of \"prompt\", \"messages\" or \"prompt_ids\"");
  }
  if (settings.empty()) return;
  // JSON is YAML's flow style: the per-item keys go through the run config's own reader and checks.
  YamlMap map = YamlMap::parse(settings.dump(), item.source);
  SamplingConfig checked;
  read_sampler_keys(map, checked);
  map.optional<uint64_t>("seed");
  map.finish();
  item.settings = std::move(map);
}

std::vector<PromptItem> read_jsonl(const std::string& path, std::string_view text) {
  std::vector<PromptItem> items;
  for_each_line(path, text, [&](int64_t line_number, std::string_view line) {
    PromptItem& item = items.emplace_back();
    item.source = fmt::format("{}:{}", path, line_number);
    try {
      if (!is_valid_utf8(line)) fail_input("not valid UTF-8");
      read_json_item(line, item);
    } catch (const InputError& error) {
      const std::string message = error.what();
      // Errors raised through YamlMap already start with the item's source.
      item.error = message.starts_with(item.source) ? message : fmt::format("{}: {}", item.source, message);
    }
  });
  return items;
}

std::vector<PromptItem> read_text_lines(const std::string& path, std::string_view text) {
  std::vector<PromptItem> items;
  for_each_line(path, text, [&](int64_t line_number, std::string_view line) {
    if (!is_valid_utf8(line)) fail_input("{}:{}: not valid UTF-8", path, line_number);
    PromptItem& item = items.emplace_back();
    item.source = fmt::format("{}:{}", path, line_number);
    item.prompt = std::string(line);
  });
  return items;
}

}  // namespace

std::vector<PromptItem> read_prompt_items(const std::string& path) {
  return parse_prompt_items(read_text_file(path), path,
                            path.ends_with(".jsonl") ? PromptsFormat::JsonLines : PromptsFormat::TextLines);
}

std::vector<PromptItem> parse_prompt_items(std::string_view text, const std::string& name, PromptsFormat format) {
  return format == PromptsFormat::JsonLines ? read_jsonl(name, text) : read_text_lines(name, text);
}

std::vector<PromptItem> collect_prompt_items(const std::string& path,
                                             const std::vector<std::string>& prompts) {
  std::vector<PromptItem> items;
  if (!path.empty()) items = read_prompt_items(path);
  for (size_t i = 0; i < prompts.size(); ++i) {
    PromptItem& item = items.emplace_back();
    item.source = fmt::format("-p #{}", i + 1);
    item.prompt = prompts[i];
    if (!is_valid_utf8(item.prompt)) fail_input("{}: not valid UTF-8", item.source);
  }
  if (items.empty()) fail_input("{}: no prompts (every line is blank)", path.empty() ? "command line" : path);
  // Items without an id are numbered by their place; an id seen before makes the later item an error.
  std::map<std::string, std::string> first_source;
  for (size_t i = 0; i < items.size(); ++i) {
    PromptItem& item = items[i];
    if (item.id.is_null()) item.id = i;
    const auto [seen, fresh] = first_source.emplace(item.id.dump(), item.source);
    if (!fresh && item.ok()) {
      item.error =
          fmt::format("{}: duplicate id {} (first used at {})", item.source, item.id.dump(), seen->second);
    }
  }
  return items;
}

}  // namespace dlm::cli
