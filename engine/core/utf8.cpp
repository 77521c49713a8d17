#include "engine/core/utf8.h"

#include <algorithm>
#include <cstdint>

namespace dlm {
namespace {

// The allowed range of the second byte after a lead byte (Unicode Table 3-7); later bytes are 80..BF.
struct LeadByte {
  size_t length;
  uint8_t second_lo, second_hi;
};

LeadByte classify_lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes from text[pos] that form a well-formed sequence or the maximal prefix of one.
size_t valid_prefix(std::string_view text, size_t pos, size_t* full_length) {
  LeadByte lead = classify_lead(static_cast<uint8_t>(text[pos]));
  *full_length = lead.length;
  if (lead.length <= 1) return lead.length;
  size_t n = 1;
  uint8_t lo = lead.second_lo, hi = lead.second_hi;
  while (n < lead.length && pos + n < text.size()) {
    uint8_t b = static_cast<uint8_t>(text[pos + n]);
    if (b < lo || b > hi) break;
    ++n;
    lo = 0x80;
    hi = 0xBF;
  }
  return n;
}

}  // namespace

size_t utf8_sequence_length(std::string_view text, size_t pos) {
  size_t full = 0;
  size_t n = valid_prefix(text, pos, &full);
  return n == full ? n : 0;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t n = utf8_sequence_length(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    size_t full = 0;
    size_t n = valid_prefix(bytes, pos, &full);
    if (n != 0 && n == full) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      out.append("\xEF\xBF\xBD");
      pos += n == 0 ? 1 : n;
    }
  }
  return out;
}

char32_t decode_utf8_at(std::string_view text, size_t pos, size_t length) {
  auto byte = [&](size_t i) { return static_cast<char32_t>(static_cast<uint8_t>(text[pos + i])); };
  switch (length) {
    case 1:
      return byte(0);
    case 2:
      return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    case 3:
      return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    default:
      return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  }
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string abbreviate_utf8(std::string_view text, size_t max_characters) {
  size_t end = 0;
  for (size_t characters = 0; end < text.size() && characters < max_characters; ++characters)
    end += std::max<size_t>(utf8_sequence_length(text, end), 1);
  if (end == text.size()) return std::string(text);
  return std::string(text.substr(0, end)) + "...";
}

}  // namespace dlm
