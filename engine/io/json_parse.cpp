#include "engine/io/json_parse.h"

#include <set>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/utf8.h"

namespace dlm {

nlohmann::json parse_json(std::string_view context, std::string_view text) {
  using Event = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string>> open_objects;  // keys seen so far in each object being parsed
  auto check = [&](int depth, Event event, nlohmann::json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth >= kMaxJsonDepth)
          fail_input("{}: JSON nested deeper than {} levels", context, kMaxJsonDepth);
        if (event == Event::object_start) open_objects.emplace_back();
        break;
      case Event::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) fail_input("{}: duplicate key '{}'", context, key);
        break;
      }
      case Event::object_end:
        open_objects.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (const nlohmann::json::exception& error) {  // parse_error, or out_of_range for a number like 1e999
    fail_input("{}: invalid JSON: {}", context, error.what());
  }
}

std::string_view json_kind(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "integer";
    case nlohmann::json::value_t::number_float:
      return "float";
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::array:
      return "array";
    case nlohmann::json::value_t::object:
      return "object";
    default:
      return "binary value";
  }
}

std::string describe_json(const nlohmann::json& value) {
  if (value.is_string()) {
    return fmt::format("string \"{}\"",
                       abbreviate_utf8(value.get_ref<const std::string&>(), kQuotedValueCharacters));
  }
  if (value.is_number() || value.is_boolean()) {
    return fmt::format("{} {}", json_kind(value), abbreviate_utf8(value.dump(), kQuotedValueCharacters));
  }
  return std::string(json_kind(value));
}

}  // namespace dlm
