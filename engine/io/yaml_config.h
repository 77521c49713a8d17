#pragma once
// Reading YAML configs into typed structs. A YamlMap is one YAML mapping; it records every key its reader
// asks for, and finish() rejects the keys nobody asked for, so a misspelled option is an error naming it and
// the file instead of a silently ignored setting. Errors read
//   run.yaml: sampler.steps: expected an integer, got 'abc' (line 4)
// Typical use:
//   YamlMap root = YamlMap::load(path);
//   config.seed = root.value_or("seed", config.seed);
//   YamlMap sampler = root.map("sampler");
//   config.remasking = sampler.enum_or("remasking", config.remasking, kRemaskingNames);
//   root.finish();  // checks root and every map read from it
//
// Scalars are typed strictly: integers are decimal ("12", "-3"), floats are decimal or exponent notation
// ("0.5", "1e-3"), booleans are true/false (also True/TRUE/False/FALSE; never yes/no/on/off), and a quoted
// or !!str-tagged scalar is always a string. An empty value, "~" or "null" is null, which no getter accepts.
// Duplicate keys and non-string keys are errors.
#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlm {

template <class T>
concept YamlValue = std::same_as<T, bool> || std::same_as<T, int> || std::same_as<T, int64_t> ||
    std::same_as<T, uint64_t> || std::same_as<T, double> || std::same_as<T, std::string> ||
    std::same_as<T, std::vector<int64_t>> || std::same_as<T, std::vector<int>> ||
    std::same_as<T, std::vector<double>> || std::same_as<T, std::vector<std::string>>;

// One spelling of a closed choice: {Remasking::Random, "random"}.
template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

template <class E, size_t N>
std::string_view enum_name(E value, const EnumName<E> (&names)[N]) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

class YamlMap {
 public:
  static YamlMap load(const std::string& path);  // the path names the file in errors
  // `source` names the text in errors. The document must be one mapping (an empty document is an empty map).
  static YamlMap parse(std::string_view text, std::string source);

  const std::string& source() const;
  std::string path(std::string_view key) const;  // "sampler.steps"

  bool has(std::string_view key) const;  // present and not null; the key counts as known
  template <YamlValue T>
  T required(std::string_view key) const;
  template <YamlValue T>
  std::optional<T> optional(std::string_view key) const;  // nullopt if absent; a null value is an error
  template <YamlValue T>
  T value_or(std::string_view key, T fallback) const {
    std::optional<T> value = optional<T>(key);
    return value ? std::move(*value) : std::move(fallback);
  }

  // Closed choices: the error for any other string lists the allowed names.
  template <class E, size_t N>
  E required_enum(std::string_view key, const EnumName<E> (&names)[N]) const {
    return names[*choose(key, spellings(names), true)].value;
  }
  template <class E, size_t N>
  E enum_or(std::string_view key, E fallback, const EnumName<E> (&names)[N]) const {
    std::optional<size_t> chosen = choose(key, spellings(names), false);
    return chosen ? names[*chosen].value : fallback;
  }

  // Nested mappings and sequences of mappings; their keys are checked by the root's finish().
  YamlMap map(std::string_view key) const;
  std::optional<YamlMap> optional_map(std::string_view key) const;
  std::vector<YamlMap> map_list(std::string_view key) const;  // required

  // Throws InputError "<source>: <path>: <message> (line N)" pointing at the key's value (or at this map
  // when the key is absent): for range checks made by the struct readers.
  [[noreturn]] void fail_at(std::string_view key, std::string_view message) const;

  // Throws InputError for the first key never asked for, in this map or any map read from it, naming the key,
  // its line and the keys that are known there.
  void finish() const;

 private:
  struct State;
  explicit YamlMap(std::shared_ptr<State> state);
  std::optional<size_t> choose(std::string_view key, const std::vector<std::string_view>& allowed,
                               bool required) const;
  template <class E, size_t N>
  static std::vector<std::string_view> spellings(const EnumName<E> (&names)[N]) {
    std::vector<std::string_view> out;
    for (const auto& entry : names) out.push_back(entry.name);
    return out;
  }

  std::shared_ptr<State> state_;
};

// `text` as a double-quoted YAML scalar that YamlMap reads back as exactly `text`: quotes, backslashes, line
// breaks (U+0085, U+2028 and U+2029 included), the byte order mark and every character a YAML document may
// not hold as it is are escaped. `what` names the value in the error thrown when `text` is not UTF-8, which
// YAML cannot carry.
std::string yaml_double_quoted(std::string_view text, std::string_view what);

}  // namespace dlm
