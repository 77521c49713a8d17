#include "engine/tokenizer/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/core/error.h"
#include "engine/core/utf8.h"

namespace dlm {
namespace {

constexpr size_t kJitStackStart = 32 * 1024;
// Long runs of one character class (a megabyte of spaces) can need a deep backtracking stack.
constexpr size_t kJitStackMax = 256 * 1024 * 1024;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  return n < 0 ? fmt::format("PCRE2 error {}", code) : std::string(reinterpret_cast<char*>(buffer));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* p) const { pcre2_match_data_free(p); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* p) const { pcre2_match_context_free(p); }
};
struct JitStackDeleter {
  void operator()(pcre2_jit_stack* p) const { pcre2_jit_stack_free(p); }
};

}  // namespace

struct SplitRegex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

SplitRegex::SplitRegex(std::string_view pattern, RegexDialect dialect)
    : pattern_(pattern), code_(std::make_unique<Code>()) {
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  options |= dialect == RegexDialect::Tiktoken ? PCRE2_DOLLAR_ENDONLY : PCRE2_MULTILINE;
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                              &offset, nullptr);
  if (code_->code == nullptr) {
    fail_input("invalid regex '{}': {} at offset {}", pattern, pcre2_message(error), offset);
  }
  // Without JIT support pcre2_match interprets the pattern, which is slower but equivalent.
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

SplitRegex::~SplitRegex() = default;
SplitRegex::SplitRegex(SplitRegex&&) noexcept = default;
SplitRegex& SplitRegex::operator=(SplitRegex&&) noexcept = default;

void SplitRegex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
  matches.clear();
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr));
  DLM_CHECK(data != nullptr, "out of memory creating PCRE2 match data");
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> context;
  std::unique_ptr<pcre2_jit_stack, JitStackDeleter> stack;
  size_t stack_size = kJitStackStart;

  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  uint32_t options = 0;  // after an empty match: retry non-empty at the same place before moving on
  while (start <= text.size()) {
    int rc = pcre2_match(code_->code, subject, text.size(), start, options, data.get(), context.get());
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && stack_size < kJitStackMax) {
      stack_size *= 8;
      if (!context) context.reset(pcre2_match_context_create(nullptr));
      stack.reset(pcre2_jit_stack_create(kJitStackStart, stack_size, nullptr));
      DLM_CHECK(context && stack, "out of memory creating a PCRE2 JIT stack");
      pcre2_jit_stack_assign(context.get(), nullptr, stack.get());
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (options == 0 || start >= text.size()) break;
      size_t n = utf8_sequence_length(text, start);
      start += n == 0 ? 1 : n;
      options = 0;
      continue;
    }
    if (rc < 0)
      fail_input("regex '{}' failed on a {}-byte text: {}", pattern_, text.size(), pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    size_t begin = ovector[0], end = ovector[1];
    matches.emplace_back(begin, end);
    options = begin == end ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    start = end;
  }
}

bool SplitRegex::matches_at(std::string_view text, size_t pos) const {
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr));
  DLM_CHECK(data != nullptr, "out of memory creating PCRE2 match data");
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                       PCRE2_ANCHORED, data.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail_input("regex '{}' failed: {}", pattern_, pcre2_message(rc));
  return true;
}

}  // namespace dlm
