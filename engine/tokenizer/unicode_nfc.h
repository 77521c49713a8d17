#pragma once
// Unicode Normalization Form C (canonical decomposition, then canonical composition), which Qwen2-family
// tokenizer.json files apply before pre-tokenization.
#include <string>
#include <string_view>

namespace dlm {

// Bytes that are not valid UTF-8 are kept as they are and separate the text around them.
std::string nfc_normalize(std::string_view text);

}  // namespace dlm
