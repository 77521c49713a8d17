#pragma once
// Resolved sampling settings as a JSON object, spelled as the YAML sampler section spells them: the keys
// every method reads, and those of the chosen commit rule and method.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "engine/io/generation_config.h"

namespace dlm::cli {

nlohmann::ordered_json sampling_record(const SamplingConfig& sampling, uint64_t seed);

}  // namespace dlm::cli
