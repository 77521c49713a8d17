#pragma once
// A compiled PCRE2 pattern (UTF, Unicode properties, JIT) that splits text into pre-tokens.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dlm {

// The regex library a pattern was written for; PCRE2 is set up to match its semantics.
enum class RegexDialect : uint8_t {
  // tiktoken (Rust fancy-regex) and JavaScript: `$` matches only at the very end of the text.
  Tiktoken,
  // Oniguruma (Ruby syntax), used by Hugging Face tokenizers: `^` and `$` match at line boundaries.
  Oniguruma,
};

class SplitRegex {
 public:
  // Throws InputError naming the pattern and PCRE2's message when it does not compile.
  SplitRegex(std::string_view pattern, RegexDialect dialect);
  ~SplitRegex();
  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;

  // The [begin, end) byte ranges of the successive non-overlapping matches in `text`. Ill-formed UTF-8
  // never matches: such bytes fall in the gaps between matches.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  // Whether the pattern matches at text[pos] (anchored there).
  bool matches_at(std::string_view text, size_t pos) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

}  // namespace dlm
