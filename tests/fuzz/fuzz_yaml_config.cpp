// Fuzzes YAML configs: the generation run reader (typed keys, enums and their alias spellings, lists of
// strings, range checks, the consistency of the settings with the method, unknown keys), then the generic
// YamlMap getters on a fixed set of key names, descending into sections and lists of sections.
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/error.h"
#include "engine/io/generation_config.h"
#include "engine/io/yaml_config.h"

namespace {

enum class Choice { A, B };
constexpr dlm::EnumName<Choice> kChoices[] = {{Choice::A, "a"}, {Choice::B, "b"}};
constexpr const char* kKeys[] = {"a", "b", "c", "model", "seed", "sampler", "steps", "list", "x"};

template <class T>
void try_get(const dlm::YamlMap& map, const char* key) {
  try {
    map.optional<T>(key);
  } catch (const dlm::InputError&) {
  }
}

void exercise(const dlm::YamlMap& map, int depth) {
  for (const char* key : kKeys) {
    try_get<bool>(map, key);
    try_get<int>(map, key);
    try_get<int64_t>(map, key);
    try_get<uint64_t>(map, key);
    try_get<double>(map, key);
    try_get<std::string>(map, key);
    try_get<std::vector<int64_t>>(map, key);
    try_get<std::vector<int>>(map, key);
    try_get<std::vector<double>>(map, key);
    try_get<std::vector<std::string>>(map, key);
    try {
      map.enum_or(key, Choice::A, kChoices);
    } catch (const dlm::InputError&) {
    }
    if (depth >= 3) continue;
    try {
      if (std::optional<dlm::YamlMap> nested = map.optional_map(key)) exercise(*nested, depth + 1);
    } catch (const dlm::InputError&) {
    }
    try {
      if (map.has(key)) {
        for (const dlm::YamlMap& element : map.map_list(key)) exercise(element, depth + 1);
      }
    } catch (const dlm::InputError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    dlm::GenerationConfig config = dlm::parse_generation_config(text, "run.yaml");
    // Accepted configs are consistent and survive the round trip through YAML (every sampler key, the stop
    // strings included).
    if (dlm::find_problem(config.sampler)) __builtin_trap();
    if (!(dlm::parse_generation_config(dlm::to_yaml(config), "resolved.yaml") == config)) __builtin_trap();
  } catch (const dlm::Error&) {
  }
  try {
    dlm::YamlMap root = dlm::YamlMap::parse(text, "fuzz.yaml");
    exercise(root, 0);
    root.finish();
  } catch (const dlm::Error&) {
  }
  return 0;
}
