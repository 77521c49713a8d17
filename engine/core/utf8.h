#pragma once
// UTF-8 validation, decoding and repair, shared by the tokenizers and the config readers.
#include <cstddef>
#include <string>
#include <string_view>

namespace dlm {

// Length of the well-formed UTF-8 sequence starting at text[pos], or 0 when the bytes there are ill-formed.
size_t utf8_sequence_length(std::string_view text, size_t pos);

bool is_valid_utf8(std::string_view text);

// Replaces each maximal ill-formed subsequence by U+FFFD (the Unicode "maximal subpart" practice, as
// Python's errors="replace" and Rust's from_utf8_lossy do).
std::string sanitize_utf8(std::string_view bytes);

// Decodes the well-formed sequence of `length` bytes at text[pos].
char32_t decode_utf8_at(std::string_view text, size_t pos, size_t length);

void append_utf8(std::string& out, char32_t code_point);

// `text` as an error message shows a value: its first `max_characters` characters followed by "..." when it
// is longer; the cut never splits a UTF-8 sequence (an ill-formed byte counts as one character).
std::string abbreviate_utf8(std::string_view text, size_t max_characters);

}  // namespace dlm
