#pragma once
// The sampler's flags, shared by every command that decodes (generate, compare, bench): one flag per key of
// the YAML "sampler" section, spelled with dashes. A flag left out keeps the value beneath it.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/generation_config.h"

namespace dlm::cli {

struct SamplerFlags {
  std::optional<std::string> method;
  std::optional<int64_t> gen_length, steps, block_length, sub_block_length;
  std::optional<double> temperature;
  std::optional<std::string> remasking, commit;
  std::optional<double> threshold, factor, entropy_bound;
  std::optional<std::string> cache;
  std::optional<double> cfg_scale;
  bool suppress_eos = false;             // given: on; absent: the value beneath
  bool suppress_eos_confidence = false;  // given: on; absent: the value beneath
  std::optional<double> eps, alg_temp, top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p, repetition_penalty;
  std::vector<std::string> stop_strings;  // --stop, repeatable; given: replaces the list beneath
  bool no_stop_early = false;             // given: stop_early off; absent: the value beneath
};

// Registers the flags on `command`; their values land in `flags` when the command line is parsed.
void add_sampler_flags(CLI::App& command, SamplerFlags& flags);

// Sets the keys whose flags were given; the result is not validated.
void apply_sampler_flags(const SamplerFlags& flags, SamplingConfig& sampler);

// Every spelling of a closed choice, for a flag's IsMember check.
template <class E, size_t N>
std::vector<std::string> spellings(const EnumName<E> (&names)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : names) out.emplace_back(entry.name);
  return out;
}

// CLI11 converts "-1" to an unsigned value by wrapping around; a seed must be written as it is meant.
extern const CLI::Validator kUnsignedFlag;

}  // namespace dlm::cli
