#pragma once
// Added tokens (special or not) found in raw text before pre-tokenization, as Hugging Face's
// AddedVocabulary finds them: leftmost-longest, non-overlapping, with the single_word/lstrip/rstrip flags.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace dlm {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;  // only where no word character touches either end
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool normalized = false;   // matched in the normalized text rather than the raw text
};

struct TextSegment {
  size_t begin, end;
  int32_t id;  // the added token's id, or -1 for text between added tokens
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // Cuts text into added tokens and the (non-empty) text between them. With AsPlainText, special tokens are
  // still found but left in the text, so nothing inside them matches either.
  void split(std::string_view text, SpecialText special, std::vector<TextSegment>& out) const;

  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // indices into tokens_, longest first
};

}  // namespace dlm
