#pragma once
// The pre-tokenizer chain of a byte-level BPE: regex splits (Hugging Face's Split and ByteLevel(use_regex),
// tiktoken's pattern) and ByteLevel's add_prefix_space, applied in order to each piece of the text.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/tokenizer/split_regex.h"

namespace dlm {

// What becomes of the regex matches (the "delimiters"), as Hugging Face's SplitDelimiterBehavior.
enum class SplitBehavior : uint8_t { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The pattern of GPT-2 (Hugging Face's ByteLevel use_regex; tiktoken's r50k_base and p50k_base).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  // With invert, the matches are the pieces and the text between them is the delimiter.
  void add_split(SplitRegex regex, SplitBehavior behavior, bool invert);
  // Prepends a space to each piece that does not start with one.
  void add_prefix_space();

  // Calls emit once per non-empty pre-token, in order. The views are valid only during the call.
  void run(std::string_view text, const std::function<void(std::string_view)>& emit) const;

 private:
  struct SplitStep {
    SplitRegex regex;
    SplitBehavior behavior;
    bool invert;
  };
  struct PrefixSpaceStep {};
  using Step = std::variant<SplitStep, PrefixSpaceStep>;

  void run_from(size_t index, std::string_view piece,
                const std::function<void(std::string_view)>& emit) const;
  static void split(const SplitStep& step, std::string_view piece,
                    const std::function<void(std::string_view)>& emit);

  std::vector<Step> steps_;
};

// A PCRE2 pattern matching `literal` verbatim.
std::string escape_regex(std::string_view literal);

}  // namespace dlm
