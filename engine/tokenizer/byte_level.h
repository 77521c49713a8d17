#pragma once
// GPT-2's reversible map between bytes and printable code points ("bytes_to_unicode"), in which byte-level
// BPE vocabularies (tokenizer.json, vocab.json) spell their tokens.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dlm {

char32_t byte_to_unicode(uint8_t byte);

// Spells raw bytes in the byte-level alphabet.
std::string byte_level_encode(std::string_view bytes);

// The bytes a byte-level string spells; nullopt when the text holds a character outside the alphabet or is
// not valid UTF-8.
std::optional<std::string> byte_level_decode(std::string_view text);

}  // namespace dlm
