// libFuzzer target: tokenizer.json parsing, then encoding and decoding a fixed text. Only dlm::Error may
// escape the library; anything else (a crash, another exception, a sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/core/error.h"
#include "engine/tokenizer/bpe_tokenizer.h"

namespace {

constexpr std::string_view kText =
    "Hello, world! I'm <|endoftext|> <|im_start|>user\n  Café e\u0301 日本語 😀 1234567 \t\r\n "
    "\xFF\xFE invalid <s> [WORD] x[WORD]y";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tokenizer = dlm::parse_tokenizer_json(std::string_view(reinterpret_cast<const char*>(data), size),
                                               "fuzz_tokenizer.json");
    for (dlm::SpecialText mode : {dlm::SpecialText::Parse, dlm::SpecialText::AsPlainText}) {
      std::vector<int32_t> ids = tokenizer->encode(kText, mode);
      tokenizer->decode(ids);
      for (int32_t id : ids) tokenizer->id_to_token(id);
    }
  } catch (const dlm::Error&) {
  }
  return 0;
}
