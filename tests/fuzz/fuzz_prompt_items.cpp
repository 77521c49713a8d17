// Fuzzes prompts files: JSON Lines items (ids, prompts, messages, token ids, expected answers, per-item
// settings read through the run config's YAML reader) and text lines. A bad line must become an item holding
// its error; only dlm::InputError (a file that is not text) may escape.
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/cli/prompt_items.h"
#include "engine/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto format : {dlm::cli::PromptsFormat::JsonLines, dlm::cli::PromptsFormat::TextLines}) {
    try {
      for (const dlm::cli::PromptItem& item : dlm::cli::parse_prompt_items(text, "fuzz.jsonl", format)) {
        if (!item.ok() && item.error.find("fuzz.jsonl:") != 0) __builtin_trap();  // errors name their line
      }
    } catch (const dlm::InputError&) {
    }
  }
  return 0;
}
