#include "engine/io/text_file.h"

#include "engine/io/mapped_file.h"

namespace dlm {

std::string read_text_file(const std::string& path) {
  MappedFile file(path);
  if (file.size() == 0) return {};
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

std::optional<CodePoint> decode_utf8(std::string_view text, size_t offset) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[offset + i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return CodePoint{lead, 1};
  size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (length == 0 || lead > 0xf4 || offset + length > text.size()) return std::nullopt;
  char32_t value = lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return std::nullopt;
    value = (value << 6) | (byte(i) & 0x3f);
  }
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < kSmallest[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
    return std::nullopt;
  return CodePoint{value, length};
}

}  // namespace dlm
