#pragma once
// The flags of `dlm generate` and how they combine with a YAML run config and the model's own defaults:
// defaults < model metadata < --config file < flags < a JSONL item's own keys (engine/cli/run_settings.h).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/cli/device_flags.h"
#include "engine/cli/run_settings.h"
#include "engine/cli/sampler_flags.h"
#include "engine/io/generation_config.h"

namespace dlm::cli {

struct GenerateFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> model;
  std::optional<std::string> model_config;  // a model overlay
  std::optional<std::string> prompts_file;
  std::vector<std::string> prompts;  // -p, in order, after the file's prompts
  std::optional<std::string> output;
  SamplerFlags sampler;
  DeviceFlags device;
  std::optional<uint64_t> seed;
  int64_t batch_size = 8;
  bool chat = false;
  bool print_config = false;
  bool visual = false;
  bool resume = false;
  bool no_progress = false;
  bool verbose = false;
};

struct GenerateOptions {
  GenerationConfig config;  // model, prompts file, output and seed; its sampler is the --config file's
  SettingsLayers layers;
  std::string model_config;  // a model overlay; empty: none
  DeviceFlags device;
  std::vector<std::string> prompts;  // -p prompts
  int64_t batch_size = 8;
  bool chat = false;
  bool print_config = false;
  bool visual = false;
  bool resume = false;
  bool progress = true;  // on a terminal
  bool verbose = false;
};

// Registers the `generate` subcommand; its values land in `flags` when the command line is parsed.
CLI::App* add_generate_command(CLI::App& app, GenerateFlags& flags);

// Applies the precedence the model does not take part in and checks the result: InputError for a bad config
// file, inconsistent settings, no model, no prompts, or --resume without --out.
GenerateOptions resolve_generate_options(const GenerateFlags& flags);

}  // namespace dlm::cli
