#pragma once
// `dlm compare`: the same prompts decoded in parallel (masked or block diffusion, over a sweep of one
// setting) and autoregressively, with speed, NFE and quality side by side in a table, a JSON report and an
// SVG chart.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/cli/device_flags.h"
#include "engine/cli/sampler_flags.h"

namespace dlm::cli {

struct CompareFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> model;  // the parallel model
  std::optional<std::string> model_config;
  std::optional<std::string> ar_model;  // empty: the parallel model, one token at a time
  std::optional<std::string> judge;
  std::optional<std::string> prompts_file;
  std::vector<std::string> prompts;
  bool chat = false;
  SamplerFlags sampler;  // the parallel side; the baseline takes its gen_length and temperature
  std::optional<std::string> sweep;
  std::optional<uint64_t> seed;
  int64_t batch_size = 8;
  std::optional<std::string> report;
  std::optional<std::string> chart;
  bool no_progress = false;
  DeviceFlags device;  // every model of the comparison
};

// Registers the `compare` subcommand; its values land in `flags` when the command line is parsed.
CLI::App* add_compare_command(CLI::App& app, CompareFlags& flags);

// Returns kExitOk, or kExitItemsFailed when some items could not be decoded in some run (the report holds
// their errors). Throws InputError for a bad flag, config, sweep, model or prompts file, before decoding.
int run_compare(const CompareFlags& flags);

}  // namespace dlm::cli
