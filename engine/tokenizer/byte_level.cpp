#include "engine/tokenizer/byte_level.h"

#include <array>

#include "engine/core/utf8.h"

namespace dlm {
namespace {

// Printable bytes map to themselves; the other 68 take the code points 256, 257, ... in byte order.
constexpr bool maps_to_itself(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

constexpr unsigned kAlphabetEnd = 256 + 68;

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, kAlphabetEnd> to_byte{};
};

constexpr Tables make_tables() {
  Tables t;
  for (auto& b : t.to_byte) b = -1;
  unsigned next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    char32_t cp = maps_to_itself(b) ? b : next++;
    t.to_unicode[b] = cp;
    t.to_byte[cp] = static_cast<int16_t>(b);
  }
  return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

char32_t byte_to_unicode(uint8_t byte) {
  return kTables.to_unicode[byte];
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, kTables.to_unicode[static_cast<uint8_t>(c)]);
  return out;
}

std::optional<std::string> byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t n = utf8_sequence_length(text, pos);
    if (n == 0) return std::nullopt;
    char32_t cp = decode_utf8_at(text, pos, n);
    if (cp >= kAlphabetEnd || kTables.to_byte[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(kTables.to_byte[cp]));
    pos += n;
  }
  return out;
}

}  // namespace dlm
