#pragma once
// Library errors: exceptions that carry context (file, tensor name, expected vs got).
// They are caught only at the CLI, which maps them to exit codes.
#include <fmt/format.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace dlm {

// How many characters of a bad value an error message quotes (abbreviate_utf8 in engine/core/utf8.h).
inline constexpr size_t kQuotedValueCharacters = 40;

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown for malformed or unsupported user input (files, configs, prompts): the message names the input.
class InputError : public Error {
 public:
  using Error::Error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] void fail_input(fmt::format_string<Args...> format, Args&&... args) {
  throw InputError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace dlm

// Checks an internal invariant or an API precondition; the message says what was expected.
#define DLM_CHECK(cond, ...)                                                                          \
  do {                                                                                                \
    if (!(cond)) {                                                                                    \
      throw ::dlm::Error(::fmt::format("{}:{}: {}", __FILE__, __LINE__, ::fmt::format(__VA_ARGS__))); \
    }                                                                                                 \
  } while (0)
