#pragma once
// The settings of a generation run (the CLI's `generate` command): which model, which prompts, where the
// output goes, and how to decode (the method and its settings). Read from YAML (configs/README.md documents
// the keys; configs/generate.yaml is the preset); the CLI's flags override what the file sets.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/yaml_config.h"

namespace dlm {

// The decoding method (samplers/README.md maps each to the published method it reproduces).
//   Auto:           the model's own: masked diffusion -> Llada (Dream for a shifted-logit model), block
//                   diffusion -> BlockDiffusion, autoregressive -> Autoregressive
//   Llada:          masked diffusion in semi-autoregressive blocks, a fixed number of commits per step
//                   (LLaDA generate.py; with commit threshold/factor and a cache: Fast-dLLM)
//   Dream:          masked diffusion over the whole canvas on the timestep schedule 1 -> eps (Dream)
//   BlockDiffusion: blocks decoded left to right against an exact K/V cache (SDAR, Fast-dLLM v2)
//   Autoregressive: one token per forward against a K/V cache
enum class Method { Auto, Llada, Dream, BlockDiffusion, Autoregressive };
inline constexpr EnumName<Method> kMethodNames[] = {
    {Method::Auto, "auto"},
    {Method::Llada, "llada"},
    {Method::Dream, "dream"},
    {Method::BlockDiffusion, "block_diffusion"},
    {Method::Autoregressive, "autoregressive"},
};

// The confidence a diffusion step ranks masked positions by. Origin is Dream's: every masked position is
// revealed independently with probability 1 - s/t. maskgit_plus and topk_margin are Dream's names.
enum class Remasking { LowConfidence, Random, Margin, Entropy, Origin };
inline constexpr EnumName<Remasking> kRemaskingNames[] = {
    {Remasking::LowConfidence, "low_confidence"},
    {Remasking::Random, "random"},
    {Remasking::Margin, "margin"},
    {Remasking::Entropy, "entropy"},
    {Remasking::Origin, "origin"},
    {Remasking::LowConfidence, "maskgit_plus"},
    {Remasking::Margin, "topk_margin"},
};

// How many of the ranked positions a diffusion step commits.
//   Schedule:     the schedule's count (LLaDA remainder-first per block, Dream's timestep count, SDAR static)
//   Threshold:    the most confident, plus every other whose confidence >= threshold (Fast-dLLM)
//   Factor:       the longest prefix of the ranking whose n-th confidence >= 1 - factor / (n + 1) (Fast-dLLM)
//   Dynamic:      every position with confidence > threshold when there are at least the schedule's count of
//                 them, else the schedule's count (SDAR low_confidence_dynamic)
//   EntropyBound: the lowest-entropy positions whose cumulative entropy stays below entropy_bound, at least
//                 one (SDAR entropy_bounded, DiffusionGemma)
enum class CommitRule { Schedule, Threshold, Factor, Dynamic, EntropyBound };
inline constexpr EnumName<CommitRule> kCommitRuleNames[] = {
    {CommitRule::Schedule, "schedule"},
    {CommitRule::Threshold, "threshold"},
    {CommitRule::Factor, "factor"},
    {CommitRule::Dynamic, "dynamic"},
    {CommitRule::EntropyBound, "entropy_bound"},
};

// Fast-dLLM's approximate caches for full-canvas masked diffusion, refreshed by a full forward at each block
// entry: Prefix keeps the prompt and finished blocks and recomputes the block and everything after it; Dual
// also keeps the positions after the block and recomputes the block alone.
enum class CacheMode { None, Prefix, Dual };
inline constexpr EnumName<CacheMode> kCacheModeNames[] = {
    {CacheMode::None, "none"},
    {CacheMode::Prefix, "prefix"},
    {CacheMode::Dual, "dual"},
};

// Defaults are LLaDA's reference generation settings; samplers/README.md lists which keys each method reads.
struct SamplingConfig {
  Method method = Method::Auto;
  int64_t gen_length = 128;  // tokens generated after the prompt (at most, with a stop)
  int64_t steps = 128;       // Llada: steps in total, split over the blocks; Dream: steps;
                             // BlockDiffusion: steps per block; unused by Autoregressive
  // Llada: semi-autoregressive block (0: 32 when it divides gen_length, else gen_length); BlockDiffusion:
  // block (0: the model's); unused by Dream and Autoregressive
  int64_t block_length = 0;
  // BlockDiffusion: sub-blocks decoded in order inside a block (Fast-dLLM v2); 0: none
  int64_t sub_block_length = 0;
  double temperature = 0.0;  // 0: greedy
  Remasking remasking = Remasking::LowConfidence;
  CommitRule commit = CommitRule::Schedule;
  double threshold = 0.9;                // Threshold and Dynamic
  double factor = 1.0;                   // Factor
  double entropy_bound = 0.1;            // EntropyBound
  CacheMode cache = CacheMode::None;     // Llada and Dream
  double cfg_scale = 0.0;                // Llada: classifier-free guidance against the prompt-masked canvas
  bool suppress_eos = false;             // Llada logits_eos_inf: EOS never predicted
  bool suppress_eos_confidence = false;  // Llada confidence_eos_eot_inf: EOS/EoT predictions ranked last
  double eps = 1e-3;                     // Dream: the schedule's last timestep
  double alg_temp = 0.0;            // Dream: > 0 draws the committed positions from softmax(conf / alg_temp)
  double top_p = 1.0;               // 1: off
  int64_t top_k = 0;                // 0: off
  double min_p = 0.0;               // Autoregressive; 0: off
  double repetition_penalty = 1.0;  // Autoregressive; 1: off
  std::vector<std::string> stop_strings;  // Autoregressive: generation ends once the text contains one
  // End a request after the block (Llada, BlockDiffusion) or token (Autoregressive) that holds a stop id.
  bool stop_early = true;
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

// A sampling value outside its range or inconsistent with another or with the method (configs/README.md
// lists the rules), named by its key in the "sampler" section.
struct SamplingProblem {
  std::string_view key;
  std::string message;
};
std::optional<SamplingProblem> find_problem(const SamplingConfig& sampler);

// Sets the sampler keys `section` holds over the values already in `sampler`, checking each key's type but
// not the combination (the caller validates once every layer is applied).
void read_sampler_keys(const YamlMap& section, SamplingConfig& sampler);

// Reads the generation keys of `root` over the defaults and checks them; leaves finish() to the caller, so
// the keys can share a file with others.
GenerationConfig read_generation_config(const YamlMap& root);
GenerationConfig load_generation_config(const std::string& path);  // a whole file: unknown keys are errors
GenerationConfig parse_generation_config(std::string_view text, std::string source);

// Throws InputError "<source>: sampler.<key>: <problem>" if find_problem reports one (for settings assembled
// from a file and flags, or handed to a sampler).
void validate(const SamplingConfig& sampler, std::string_view source);

// The resolved config as YAML that read_generation_config reads back unchanged (for --verbose).
std::string to_yaml(const GenerationConfig& config);

}  // namespace dlm
