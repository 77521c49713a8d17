#pragma once
// Reading whole text files (configs) and checking their encoding; errors name the file.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dlm {

std::string read_text_file(const std::string& path);  // InputError if missing, unreadable or not a file

struct CodePoint {
  char32_t value = 0;
  size_t length = 0;  // bytes
};
// Decodes the UTF-8 sequence starting at text[offset]; nullopt if it is ill-formed (truncated, overlong, a
// surrogate, or past U+10FFFF).
std::optional<CodePoint> decode_utf8(std::string_view text, size_t offset);

}  // namespace dlm
