#pragma once
// The settings of a generation run (the CLI's `generate` command): which model, which prompts, where the
// output goes, and the masked-diffusion sampling schedule. Read from YAML (configs/README.md documents the
// keys; configs/generate.yaml is the preset); the CLI's flags override what the file sets.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/yaml_config.h"

namespace dlm {

// Which masked positions a step commits: the most confident predictions, or uniformly random ones.
enum class Remasking { LowConfidence, Random };
inline constexpr EnumName<Remasking> kRemaskingNames[] = {
    {Remasking::LowConfidence, "low_confidence"},
    {Remasking::Random, "random"},
};

// Defaults are LLaDA's reference generation settings.
struct SamplingConfig {
  int64_t gen_length = 128;   // tokens generated after the prompt
  int64_t steps = 128;        // denoising steps in total, split evenly over the blocks
  int64_t block_length = 32;  // semi-autoregressive block size; divides gen_length
  double temperature = 0.0;   // 0: greedy
  Remasking remasking = Remasking::LowConfidence;
  bool operator==(const SamplingConfig&) const = default;
};

struct GenerationConfig {
  std::string model;    // checkpoint: a model directory or a .safetensors file; may come from the CLI instead
  std::string prompts;  // prompts file; may come from the CLI instead
  std::string output;   // output file; empty: standard output
  uint64_t seed = 0;
  SamplingConfig sampler;
  bool operator==(const GenerationConfig&) const = default;
};

// A sampling value outside its range or inconsistent with another, named by its key in the "sampler"
// section.
struct SamplingProblem {
  std::string_view key;
  std::string message;
};
std::optional<SamplingProblem> find_problem(const SamplingConfig& sampler);

// Reads the generation keys of `root` over the defaults and checks them; leaves finish() to the caller, so
// the keys can share a file with others.
GenerationConfig read_generation_config(const YamlMap& root);
GenerationConfig load_generation_config(const std::string& path);  // a whole file: unknown keys are errors
GenerationConfig parse_generation_config(std::string_view text, std::string source);

// Throws InputError "<source>: sampler.steps: <problem>" if find_problem reports one (for settings assembled
// from a file and flags, or handed to a sampler).
void validate(const SamplingConfig& sampler, std::string_view source);

// The resolved config as YAML that read_generation_config reads back unchanged (for --verbose).
std::string to_yaml(const GenerationConfig& config);

}  // namespace dlm
