#pragma once
// `dlm bench`: decoding speed over a sweep of settings (batch size, prompt and generation length, block
// length, steps, method, commit rule, cache mode) on one model. Each point is timed over repeated runs after
// warm-up and reported as the median, in a markdown, CSV or JSON table with the command that reproduces it.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/cli/device_flags.h"
#include "engine/cli/sampler_flags.h"

namespace dlm::cli {

struct BenchFlags {
  std::string model;
  std::optional<std::string> model_config;
  SamplerFlags sampler;  // the keys that are not swept: the same for every point
  // The swept keys, as given: each entry a comma-separated list (the flag is repeatable). None given: the
  // key's single value (the model's default), or for batch size and prompt length the ones below.
  std::vector<std::string> batch_sizes, prompt_lengths, methods, gen_lengths, block_lengths, steps, commits,
      caches;
  bool stop_early = false;
  bool profile = false;  // one more run per point with each backend op timed alone
  int64_t warmup = 1;
  int64_t repeat = 5;
  uint64_t seed = 0;
  std::string format = "md";
  std::optional<std::string> output;
  DeviceFlags device;
  std::vector<std::string> command_line;  // argv as the process got it, for the reproducing command
};

// Registers the `bench` subcommand; its values land in `flags` when the command line is parsed.
CLI::App* add_bench_command(CLI::App& app, BenchFlags& flags);

// Returns kExitOk, or kExitItemsFailed when some points could not run (their rows hold the reason). Throws
// InputError for a bad flag value, a model that does not load or an output file that cannot be written.
int run_bench(const BenchFlags& flags);

}  // namespace dlm::cli
