#include "engine/cli/sampler_flags.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace dlm::cli {

namespace {

template <class E, size_t N>
E parse_enum(std::string_view flag, const std::string& name, const EnumName<E> (&names)[N]) {
  for (const auto& entry : names) {
    if (entry.name == name) return entry.value;
  }
  fail_input("{}: unknown value '{}'", flag, name);  // unreachable after the flag's IsMember check
}

}  // namespace

const CLI::Validator kUnsignedFlag(
    [](std::string& text) {
      return text.find_first_not_of("0123456789") == std::string::npos ? std::string()
                                                                       : "must be a non-negative integer";
    },
    "");

void add_sampler_flags(CLI::App& command, SamplerFlags& flags) {
  const SamplingConfig d;
  command
      .add_option(
          "--method", flags.method,
          fmt::format("decoding method; auto: the model's own [{}]", enum_name(d.method, kMethodNames)))
      ->check(CLI::IsMember(spellings(kMethodNames)));
  command.add_option("--gen-length", flags.gen_length,
                     fmt::format("tokens to generate per prompt (at most, with a stop) [{}]", d.gen_length));
  command.add_option(
      "--steps", flags.steps,
      fmt::format("denoising steps: llada in total, split evenly over the blocks; dream in all; "
                  "block_diffusion per block [{}]",
                  d.steps));
  command.add_option(
      "--block-length", flags.block_length,
      fmt::format("llada: semi-autoregressive block, divides --gen-length (0: 32 when that "
                  "divides it, else --gen-length); block_diffusion: block (0: the model's) [{}]",
                  d.block_length));
  command.add_option("--sub-block-length", flags.sub_block_length,
                     fmt::format("block_diffusion: sub-blocks decoded in order inside a block, divides "
                                 "--block-length; 0: none [{}]",
                                 d.sub_block_length));
  command.add_option("--temperature", flags.temperature,
                     fmt::format("0: greedy; 1e-6 to 1e6: sampling at that temperature [{}]", d.temperature));
  command
      .add_option("--remasking", flags.remasking,
                  fmt::format("the confidence a diffusion step ranks masked positions by; origin: dream "
                              "only [{}]",
                              enum_name(d.remasking, kRemaskingNames)))
      ->check(CLI::IsMember(spellings(kRemaskingNames)));
  command
      .add_option("--commit", flags.commit,
                  fmt::format("how many ranked positions a diffusion step commits; dynamic: block_diffusion "
                              "only [{}]",
                              enum_name(d.commit, kCommitRuleNames)))
      ->check(CLI::IsMember(spellings(kCommitRuleNames)));
  command.add_option(
      "--threshold", flags.threshold,
      fmt::format("confidence threshold of --commit threshold and dynamic, in (0, 1] [{}]", d.threshold));
  command.add_option("--factor", flags.factor, fmt::format("factor of --commit factor, > 0 [{}]", d.factor));
  command.add_option(
      "--entropy-bound", flags.entropy_bound,
      fmt::format("bound on a step's summed entropy for --commit entropy_bound, > 0 [{}]", d.entropy_bound));
  command
      .add_option("--cache", flags.cache,
                  fmt::format("llada, dream: Fast-dLLM's approximate K/V cache [{}]",
                              enum_name(d.cache, kCacheModeNames)))
      ->check(CLI::IsMember(spellings(kCacheModeNames)));
  command.add_option(
      "--cfg-scale", flags.cfg_scale,
      fmt::format("llada: classifier-free guidance scale, up to 1e6; 0: off [{}]", d.cfg_scale));
  command.add_flag("--suppress-eos", flags.suppress_eos, "llada: EOS is never predicted (logits_eos_inf)");
  command.add_flag("--suppress-eos-confidence", flags.suppress_eos_confidence,
                   "llada: EOS and EoT predictions are ranked last (confidence_eos_eot_inf)");
  command.add_option("--eps", flags.eps,
                     fmt::format("dream: the timestep schedule's last time, in (0, 1) [{}]", d.eps));
  command.add_option("--alg-temp", flags.alg_temp,
                     fmt::format("dream: 1e-6 to 1e6 draws the committed positions from "
                                 "softmax(confidence / alg-temp); 0: off [{}]",
                                 d.alg_temp));
  command.add_option(
      "--top-p", flags.top_p,
      fmt::format("keep the most likely tokens holding this probability mass; 1: off [{}]", d.top_p));
  command.add_option("--top-k", flags.top_k,
                     fmt::format("keep the k most likely tokens; 0: off [{}]", d.top_k));
  command.add_option("--min-p", flags.min_p,
                     fmt::format("autoregressive: drop tokens less likely than min-p times the most likely; "
                                 "0: off [{}]",
                                 d.min_p));
  command.add_option(
      "--repetition-penalty", flags.repetition_penalty,
      fmt::format("autoregressive: penalty on the tokens already in the sequence, 1e-6 to 1e6; "
                  "1: off [{}]",
                  d.repetition_penalty));
  command
      .add_option("--stop", flags.stop_strings,
                  "autoregressive: a stop string (repeatable): generation ends once the text holds one; "
                  "replaces the config's stop_strings [none]")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command.add_flag("--no-stop-early", flags.no_stop_early,
                   "decode all gen_length tokens even after a stop token (stop_early: false)");
}

void apply_sampler_flags(const SamplerFlags& flags, SamplingConfig& sampler) {
  if (flags.method) sampler.method = parse_enum("--method", *flags.method, kMethodNames);
  if (flags.gen_length) sampler.gen_length = *flags.gen_length;
  if (flags.steps) sampler.steps = *flags.steps;
  if (flags.block_length) sampler.block_length = *flags.block_length;
  if (flags.sub_block_length) sampler.sub_block_length = *flags.sub_block_length;
  if (flags.temperature) sampler.temperature = *flags.temperature;
  if (flags.remasking) sampler.remasking = parse_enum("--remasking", *flags.remasking, kRemaskingNames);
  if (flags.commit) sampler.commit = parse_enum("--commit", *flags.commit, kCommitRuleNames);
  if (flags.threshold) sampler.threshold = *flags.threshold;
  if (flags.factor) sampler.factor = *flags.factor;
  if (flags.entropy_bound) sampler.entropy_bound = *flags.entropy_bound;
  if (flags.cache) sampler.cache = parse_enum("--cache", *flags.cache, kCacheModeNames);
  if (flags.cfg_scale) sampler.cfg_scale = *flags.cfg_scale;
  if (flags.suppress_eos) sampler.suppress_eos = true;
  if (flags.suppress_eos_confidence) sampler.suppress_eos_confidence = true;
  if (flags.eps) sampler.eps = *flags.eps;
  if (flags.alg_temp) sampler.alg_temp = *flags.alg_temp;
  if (flags.top_p) sampler.top_p = *flags.top_p;
  if (flags.top_k) sampler.top_k = *flags.top_k;
  if (flags.min_p) sampler.min_p = *flags.min_p;
  if (flags.repetition_penalty) sampler.repetition_penalty = *flags.repetition_penalty;
  if (!flags.stop_strings.empty()) sampler.stop_strings = flags.stop_strings;
  if (flags.no_stop_early) sampler.stop_early = false;
}

}  // namespace dlm::cli
