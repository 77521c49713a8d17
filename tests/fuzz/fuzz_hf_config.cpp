// Fuzzes Hugging Face JSON configs: parsing, then every typed getter on every key, descending into nested
// objects. Each getter may reject its value with dlm::InputError; nothing else may escape.
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/error.h"
#include "engine/io/hf_config.h"

namespace {

template <class T>
void try_get(const dlm::HfConfig& config, const std::string& key) {
  try {
    config.optional<T>(key);
  } catch (const dlm::InputError&) {
  }
}

void exercise(const dlm::HfConfig& config) {
  for (const std::string& key : config.keys()) {
    try_get<bool>(config, key);
    try_get<int>(config, key);
    try_get<int64_t>(config, key);
    try_get<double>(config, key);
    try_get<std::string>(config, key);
    try_get<std::vector<int64_t>>(config, key);
    try_get<std::vector<int>>(config, key);
    try_get<std::vector<double>>(config, key);
    try_get<std::vector<std::string>>(config, key);
    try {
      config.optional_int_list(key);
      if (std::optional<dlm::HfConfig> nested = config.optional_object(key)) exercise(*nested);
    } catch (const dlm::InputError&) {
    }
  }
  try {
    config.required<int>("num_attention_heads");
  } catch (const dlm::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dlm::HfConfig config =
        dlm::HfConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
    exercise(config);
  } catch (const dlm::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}
