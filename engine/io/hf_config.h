#pragma once
// Hugging Face JSON configs (config.json, generation_config.json, tokenizer_config.json): a parsed object
// with typed getters whose errors name the file and the key, e.g.
//   config.json: key 'num_attention_heads' must be an integer, got string "32"
// A key that is absent or null counts as absent: Hugging Face writes unset options as null.
#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlm {

// The value types the getters convert to. Integers must be JSON integers (4096.0 is not an integer); floats
// accept any JSON number; int is range-checked.
template <class T>
concept HfConfigValue = std::same_as<T, bool> || std::same_as<T, int> || std::same_as<T, int64_t> ||
    std::same_as<T, double> || std::same_as<T, std::string> || std::same_as<T, std::vector<int64_t>> ||
    std::same_as<T, std::vector<int>> || std::same_as<T, std::vector<double>> ||
    std::same_as<T, std::vector<std::string>>;

class HfConfig {
 public:
  static HfConfig load(const std::string& path);  // the path names the file in errors
  // `source` names the text in errors (e.g. "config.json"). The top level must be a JSON object.
  static HfConfig parse(std::string_view text, std::string source);

  const std::string& source() const { return source_; }
  bool has(std::string_view key) const;   // present and not null
  std::vector<std::string> keys() const;  // sorted; includes keys whose value is null

  template <HfConfigValue T>
  T required(std::string_view key) const;  // InputError if absent, null or of another type
  template <HfConfigValue T>
  std::optional<T> optional(std::string_view key) const;  // nullopt if absent or null; InputError if mistyped
  template <HfConfigValue T>
  T value_or(std::string_view key, T fallback) const {
    std::optional<T> value = optional<T>(key);
    return value ? std::move(*value) : std::move(fallback);
  }

  // An integer or an array of integers, as token ids such as eos_token_id are written; a single integer reads
  // as a list of one. nullopt if absent or null.
  std::optional<std::vector<int64_t>> optional_int_list(std::string_view key) const;

  // Nested objects ("rope_scaling", "text_config"): their errors name the full key, e.g.
  // "config.json: key 'text_config.hidden_size' ...".
  HfConfig object(std::string_view key) const;
  std::optional<HfConfig> optional_object(std::string_view key) const;

 private:
  struct Node;  // the parsed JSON object, kept out of this header
  HfConfig(std::shared_ptr<const Node> node, std::string source, std::string prefix);
  std::string key_path(std::string_view key) const;
  bool has_null(std::string_view key) const;

  std::shared_ptr<const Node> node_;
  std::string source_;
  std::string prefix_;  // "text_config." inside a nested object
};

}  // namespace dlm
