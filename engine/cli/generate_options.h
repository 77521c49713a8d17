#pragma once
// The flags of `dlm generate` and how they combine with a YAML run config: defaults < --config file < flags.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/generation_config.h"

namespace dlm::cli {

struct GenerateFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> model;
  std::optional<std::string> model_config;  // a model overlay
  std::optional<std::string> prompts_file;
  std::vector<std::string> prompts;  // -p, in order, after the file's prompts
  std::optional<std::string> output;
  // The sampler's keys, by their names in the YAML "sampler" section; unset: the config's value.
  std::optional<std::string> method;
  std::optional<int64_t> gen_length, steps, block_length, sub_block_length;
  std::optional<double> temperature;
  std::optional<std::string> remasking, commit;
  std::optional<double> threshold, factor, entropy_bound;
  std::optional<std::string> cache;
  std::optional<double> cfg_scale;
  bool suppress_eos = false;             // given: on; absent: the config's value
  bool suppress_eos_confidence = false;  // given: on; absent: the config's value
  std::optional<double> eps, alg_temp, top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p, repetition_penalty;
  std::vector<std::string> stop_strings;  // --stop, repeatable; given: replaces the config's list
  bool no_stop_early = false;             // given: stop_early off; absent: the config's value
  std::optional<uint64_t> seed;
  int64_t batch_size = 8;
  bool verbose = false;
};

struct GenerateOptions {
  GenerationConfig config;
  std::string model_config;          // a model overlay; empty: none
  std::vector<std::string> prompts;  // -p prompts
  int64_t batch_size = 8;
  bool verbose = false;
};

// Registers the `generate` subcommand; its values land in `flags` when the command line is parsed.
CLI::App* add_generate_command(CLI::App& app, GenerateFlags& flags);

// Applies the precedence and checks the result: InputError for a bad config file, inconsistent settings, no
// model, or no prompts.
GenerateOptions resolve_generate_options(const GenerateFlags& flags);

}  // namespace dlm::cli
