#include "engine/tokenizer/added_tokens.h"

#include <algorithm>

#include "engine/tokenizer/split_regex.h"
#include "engine/core/utf8.h"

namespace dlm {
namespace {

// Unicode White_Space, which `\s` means in the Rust regex crate the reference implementation uses.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Start of the code point that ends text[0, end), or npos when the bytes there are not valid UTF-8.
size_t last_code_point(std::string_view text, size_t end) {
  for (size_t back = 1; back <= 4 && back <= end; ++back) {
    size_t pos = end - back;
    if ((static_cast<uint8_t>(text[pos]) & 0xC0) != 0x80) {
      return utf8_sequence_length(text, pos) == back ? pos : std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

bool is_word_char_at(std::string_view text, size_t pos) {
  static const SplitRegex word(R"(\w)", RegexDialect::Tiktoken);
  return pos != std::string_view::npos && word.matches_at(text, pos);
}

// Start of the whitespace run that ends at `end`.
size_t whitespace_run_start(std::string_view text, size_t end) {
  while (end > 0) {
    size_t pos = last_code_point(text, end);
    if (pos == std::string_view::npos) break;
    size_t n = end - pos;
    if (!is_white_space(decode_utf8_at(text, pos, n))) break;
    end = pos;
  }
  return end;
}

// End of the whitespace run that starts at `begin`.
size_t whitespace_run_end(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    size_t n = utf8_sequence_length(text, begin);
    if (n == 0 || !is_white_space(decode_utf8_at(text, begin, n))) break;
    begin += n;
  }
  return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (uint32_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](uint32_t a, uint32_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

void AddedTokenMatcher::split(std::string_view text, SpecialText special,
                              std::vector<TextSegment>& out) const {
  out.clear();
  size_t emitted = 0;  // end of the last segment pushed
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<uint8_t>(text[pos])];
    const AddedToken* found = nullptr;
    for (uint32_t index : candidates) {
      const std::string& content = tokens_[index].content;
      if (text.compare(pos, content.size(), content) == 0) {
        found = &tokens_[index];
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + found->content.size();
    pos = stop;
    if (special == SpecialText::AsPlainText && found->special) continue;
    if (found->single_word) {
      bool word_before = start > 0 && is_word_char_at(text, last_code_point(text, start));
      bool word_after = stop < text.size() && is_word_char_at(text, stop);
      if (word_before || word_after) continue;
    }
    if (found->lstrip) start = std::max(whitespace_run_start(text, start), emitted);
    if (found->rstrip) stop = whitespace_run_end(text, stop);
    if (emitted < start) out.push_back({emitted, start, -1});
    out.push_back({start, stop, found->id});
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), -1});
}

}  // namespace dlm
