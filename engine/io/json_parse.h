#pragma once
// Strict JSON parsing for every reader of JSON input (safetensors headers and indexes, Hugging Face configs,
// tokenizer.json). Include it only from .cpp files, never from a header: nlohmann is slow to compile.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace dlm {

// Deepest nesting accepted: the formats read here are a few levels deep, and a bound keeps hostile input from
// growing the parser's stacks without limit.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as one JSON value. Malformed JSON, a duplicate key in an object (which JSON parsers resolve
// differently, so it is ambiguous) and nesting deeper than kMaxJsonDepth throw InputError prefixed by
// `context` (e.g. "model.safetensors: header").
nlohmann::json parse_json(std::string_view context, std::string_view text);

// "integer", "float", "string", "array", ... for error messages.
std::string_view json_kind(const nlohmann::json& value);
// The kind, followed for scalars by their (shortened) value: `string "32"`, `float 1.5`, `array`.
std::string describe_json(const nlohmann::json& value);

}  // namespace dlm
