#include "engine/io/hf_config.h"

#include <limits>

#include "engine/core/error.h"
#include "engine/io/json_parse.h"
#include "engine/io/text_file.h"

namespace dlm {

struct HfConfig::Node {
  nlohmann::json value;  // always an object
};

namespace {

// Converts one JSON value; `what` names it in errors ("config.json: key 'x'" or "... key 'x'[2]").
template <class T>
struct Convert;

template <>
struct Convert<bool> {
  static constexpr std::string_view kExpected = "a boolean";
  static std::optional<bool> from(const nlohmann::json& value, std::string_view) {
    if (!value.is_boolean()) return std::nullopt;
    return value.get<bool>();
  }
};

template <>
struct Convert<int64_t> {
  static constexpr std::string_view kExpected = "an integer";
  static std::optional<int64_t> from(const nlohmann::json& value, std::string_view what) {
    if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
    if (!value.is_number_unsigned()) return std::nullopt;
    uint64_t unsigned_value = value.get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_input("{} = {} is out of range for a 64-bit integer", what, unsigned_value);
    }
    return static_cast<int64_t>(unsigned_value);
  }
};

template <>
struct Convert<int> {
  static constexpr std::string_view kExpected = "an integer";
  static std::optional<int> from(const nlohmann::json& value, std::string_view what) {
    std::optional<int64_t> wide = Convert<int64_t>::from(value, what);
    if (!wide) return std::nullopt;
    if (*wide < std::numeric_limits<int>::min() || *wide > std::numeric_limits<int>::max()) {
      fail_input("{} = {} is out of range for a 32-bit integer", what, *wide);
    }
    return static_cast<int>(*wide);
  }
};

template <>
struct Convert<double> {
  static constexpr std::string_view kExpected = "a number";
  static std::optional<double> from(const nlohmann::json& value, std::string_view) {
    if (!value.is_number()) return std::nullopt;
    return value.get<double>();
  }
};

template <>
struct Convert<std::string> {
  static constexpr std::string_view kExpected = "a string";
  static std::optional<std::string> from(const nlohmann::json& value, std::string_view) {
    if (!value.is_string()) return std::nullopt;
    return value.get<std::string>();
  }
};

template <class T>
T convert(const nlohmann::json& value, std::string_view what) {
  std::optional<T> converted = Convert<T>::from(value, what);
  if (!converted) fail_input("{} must be {}, got {}", what, Convert<T>::kExpected, describe_json(value));
  return std::move(*converted);
}

template <class T>
struct Convert<std::vector<T>> {
  static constexpr std::string_view kExpected = "an array";
  static std::optional<std::vector<T>> from(const nlohmann::json& value, std::string_view what) {
    if (!value.is_array()) {
      fail_input("{} must be an array of {}, got {}", what, element_kind(), describe_json(value));
    }
    std::vector<T> out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i)
      out.push_back(convert<T>(value[i], fmt::format("{}[{}]", what, i)));
    return out;
  }
  static std::string_view element_kind() {
    if constexpr (std::is_same_v<T, std::string>) return "strings";
    if constexpr (std::is_same_v<T, double>) return "numbers";
    return "integers";
  }
};

}  // namespace

HfConfig::HfConfig(std::shared_ptr<const Node> node, std::string source, std::string prefix)
    : node_(std::move(node)), source_(std::move(source)), prefix_(std::move(prefix)) {}

HfConfig HfConfig::load(const std::string& path) {
  return parse(read_text_file(path), path);
}

HfConfig HfConfig::parse(std::string_view text, std::string source) {
  nlohmann::json value = parse_json(source, text);
  if (!value.is_object()) fail_input("{}: must be a JSON object, got {}", source, describe_json(value));
  return HfConfig(std::make_shared<const Node>(Node{std::move(value)}), std::move(source), "");
}

std::string HfConfig::key_path(std::string_view key) const {
  return fmt::format("{}: key '{}{}'", source_, prefix_, key);
}

bool HfConfig::has(std::string_view key) const {
  auto it = node_->value.find(key);
  return it != node_->value.end() && !it->is_null();
}

std::vector<std::string> HfConfig::keys() const {
  std::vector<std::string> keys;
  for (const auto& item : node_->value.items()) keys.push_back(item.key());
  return keys;  // nlohmann::json objects iterate in key order
}

template <HfConfigValue T>
std::optional<T> HfConfig::optional(std::string_view key) const {
  auto it = node_->value.find(key);
  if (it == node_->value.end() || it->is_null()) return std::nullopt;
  return convert<T>(*it, key_path(key));
}

template <HfConfigValue T>
T HfConfig::required(std::string_view key) const {
  std::optional<T> value = optional<T>(key);
  if (!value) fail_input("{} is required but {}", key_path(key), has_null(key) ? "null" : "missing");
  return std::move(*value);
}

std::optional<std::vector<int64_t>> HfConfig::optional_int_list(std::string_view key) const {
  auto it = node_->value.find(key);
  if (it == node_->value.end() || it->is_null()) return std::nullopt;
  if (it->is_array()) return convert<std::vector<int64_t>>(*it, key_path(key));
  if (!it->is_number_integer()) {
    fail_input("{} must be an integer or an array of integers, got {}", key_path(key), describe_json(*it));
  }
  return std::vector<int64_t>{convert<int64_t>(*it, key_path(key))};
}

std::optional<HfConfig> HfConfig::optional_object(std::string_view key) const {
  auto it = node_->value.find(key);
  if (it == node_->value.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) fail_input("{} must be an object, got {}", key_path(key), describe_json(*it));
  return HfConfig(std::make_shared<const Node>(Node{*it}), source_, fmt::format("{}{}.", prefix_, key));
}

HfConfig HfConfig::object(std::string_view key) const {
  std::optional<HfConfig> nested = optional_object(key);
  if (!nested) fail_input("{} is required but {}", key_path(key), has_null(key) ? "null" : "missing");
  return std::move(*nested);
}

bool HfConfig::has_null(std::string_view key) const {
  auto it = node_->value.find(key);
  return it != node_->value.end() && it->is_null();
}

#define DLM_HF_CONFIG_GETTERS(T)                                \
  template T HfConfig::required<T>(std::string_view key) const; \
  template std::optional<T> HfConfig::optional<T>(std::string_view key) const;
DLM_HF_CONFIG_GETTERS(bool)
DLM_HF_CONFIG_GETTERS(int)
DLM_HF_CONFIG_GETTERS(int64_t)
DLM_HF_CONFIG_GETTERS(double)
DLM_HF_CONFIG_GETTERS(std::string)
DLM_HF_CONFIG_GETTERS(std::vector<int64_t>)
DLM_HF_CONFIG_GETTERS(std::vector<int>)
DLM_HF_CONFIG_GETTERS(std::vector<double>)
DLM_HF_CONFIG_GETTERS(std::vector<std::string>)
#undef DLM_HF_CONFIG_GETTERS

}  // namespace dlm
