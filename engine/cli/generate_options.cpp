#include "engine/cli/generate_options.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace dlm::cli {

namespace {

// Every spelling of a closed choice, for the flag's IsMember check (and its help).
template <class E, size_t N>
std::vector<std::string> spellings(const EnumName<E> (&names)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : names) out.emplace_back(entry.name);
  return out;
}

// CLI11 converts "-1" to an unsigned value by wrapping around; a seed must be written as it is meant.
const CLI::Validator kUnsigned(
    [](std::string& text) {
      return text.find_first_not_of("0123456789") == std::string::npos ? std::string()
                                                                       : "must be a non-negative integer";
    },
    "");

template <class E, size_t N>
E parse_enum(std::string_view flag, const std::string& name, const EnumName<E> (&names)[N]) {
  for (const auto& entry : names) {
    if (entry.name == name) return entry.value;
  }
  fail_input("{}: unknown value '{}'", flag, name);  // unreachable after the flag's IsMember check
}

}  // namespace

CLI::App* add_generate_command(CLI::App& app, GenerateFlags& flags) {
  CLI::App* command = app.add_subcommand("generate",
                                         "Generate a completion for every prompt (masked diffusion, block "
                                         "diffusion or autoregressive decoding) and write one JSON record "
                                         "per prompt.");
  command->footer(
      "Records (JSON Lines, written and flushed one by one, in prompt order):\n"
      "  {\"id\", \"prompt\", \"text\", \"token_ids\", \"finish\", \"nfe\", \"tokens_per_nfe\", "
      "\"seconds\", \"timings\",\n"
      "   \"settings\"}\n"
      "  {\"id\", \"error\"} for a prompt that failed (e.g. longer than the model's context); the others "
      "go on.\n"
      "'text' ends before the first stop token and is cut at the first stop string; 'token_ids' holds\n"
      "all gen_length generated tokens, or those up to and including the stop token when stop_early\n"
      "ends the request ('finish': length, stop_token or stop_string). A BOS token is put before each\n"
      "prompt when the tokenizer has one. samplers/README.md lists the settings of each published method.\n");
  const GenerationConfig defaults;
  // A flag given twice takes its last value, so a script can append overrides.
  command->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command
      ->add_option("--config", flags.config_file,
                   "YAML run config (see configs/README.md); flags override it")
      ->check(CLI::ExistingFile);
  command->add_option("-m,--model", flags.model, "model directory: config.json, *.safetensors, tokenizer");
  command
      ->add_option("--model-config", flags.model_config,
                   "model overlay (YAML): mask and stop tokens, logit shift, block size, chat template; "
                   "overrides the model's own files (see configs/README.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--prompts", flags.prompts_file,
                      "prompts file: one prompt per line, blank lines skipped");
  command->add_option("-p,--prompt", flags.prompts, "a prompt (repeatable), after those of --prompts")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command->add_option("-o,--out", flags.output, "output file (JSON Lines); default: standard output");
  const SamplingConfig& d = defaults.sampler;
  command
      ->add_option(
          "--method", flags.method,
          fmt::format("decoding method; auto: the model's own [{}]", enum_name(d.method, kMethodNames)))
      ->check(CLI::IsMember(spellings(kMethodNames)));
  command->add_option("--gen-length", flags.gen_length,
                      fmt::format("tokens to generate per prompt (at most, with a stop) [{}]", d.gen_length));
  command->add_option(
      "--steps", flags.steps,
      fmt::format("denoising steps: llada in total, split evenly over the blocks; dream in all; "
                  "block_diffusion per block [{}]",
                  d.steps));
  command->add_option(
      "--block-length", flags.block_length,
      fmt::format("llada: semi-autoregressive block, divides --gen-length (0: 32 when that "
                  "divides it, else --gen-length); block_diffusion: block (0: the model's) [{}]",
                  d.block_length));
  command->add_option("--sub-block-length", flags.sub_block_length,
                      fmt::format("block_diffusion: sub-blocks decoded in order inside a block, divides "
                                  "--block-length; 0: none [{}]",
                                  d.sub_block_length));
  command->add_option("--temperature", flags.temperature,
                      fmt::format("0: greedy; > 0: sampling at that temperature [{}]", d.temperature));
  command
      ->add_option("--remasking", flags.remasking,
                   fmt::format("the confidence a diffusion step ranks masked positions by; origin: dream "
                               "only [{}]",
                               enum_name(d.remasking, kRemaskingNames)))
      ->check(CLI::IsMember(spellings(kRemaskingNames)));
  command
      ->add_option("--commit", flags.commit,
                   fmt::format("how many ranked positions a diffusion step commits; dynamic: block_diffusion "
                               "only [{}]",
                               enum_name(d.commit, kCommitRuleNames)))
      ->check(CLI::IsMember(spellings(kCommitRuleNames)));
  command->add_option(
      "--threshold", flags.threshold,
      fmt::format("confidence threshold of --commit threshold and dynamic, in (0, 1] [{}]", d.threshold));
  command->add_option("--factor", flags.factor, fmt::format("factor of --commit factor, > 0 [{}]", d.factor));
  command->add_option(
      "--entropy-bound", flags.entropy_bound,
      fmt::format("bound on a step's summed entropy for --commit entropy_bound, > 0 [{}]", d.entropy_bound));
  command
      ->add_option("--cache", flags.cache,
                   fmt::format("llada, dream: Fast-dLLM's approximate K/V cache [{}]",
                               enum_name(d.cache, kCacheModeNames)))
      ->check(CLI::IsMember(spellings(kCacheModeNames)));
  command->add_option("--cfg-scale", flags.cfg_scale,
                      fmt::format("llada: classifier-free guidance scale; 0: off [{}]", d.cfg_scale));
  command->add_flag("--suppress-eos", flags.suppress_eos, "llada: EOS is never predicted (logits_eos_inf)");
  command->add_flag("--suppress-eos-confidence", flags.suppress_eos_confidence,
                    "llada: EOS and EoT predictions are ranked last (confidence_eos_eot_inf)");
  command->add_option("--eps", flags.eps,
                      fmt::format("dream: the timestep schedule's last time, in (0, 1) [{}]", d.eps));
  command->add_option("--alg-temp", flags.alg_temp,
                      fmt::format("dream: > 0 draws the committed positions from softmax(confidence / "
                                  "alg-temp); 0: off [{}]",
                                  d.alg_temp));
  command->add_option(
      "--top-p", flags.top_p,
      fmt::format("keep the most likely tokens holding this probability mass; 1: off [{}]", d.top_p));
  command->add_option("--top-k", flags.top_k,
                      fmt::format("keep the k most likely tokens; 0: off [{}]", d.top_k));
  command->add_option("--min-p", flags.min_p,
                      fmt::format("autoregressive: drop tokens less likely than min-p times the most likely; "
                                  "0: off [{}]",
                                  d.min_p));
  command->add_option(
      "--repetition-penalty", flags.repetition_penalty,
      fmt::format("autoregressive: penalty on the tokens already in the sequence; 1: off [{}]",
                  d.repetition_penalty));
  command
      ->add_option("--stop", flags.stop_strings,
                   "autoregressive: a stop string (repeatable): generation ends once the text holds one; "
                   "replaces the config's stop_strings [none]")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command->add_flag("--no-stop-early", flags.no_stop_early,
                    "decode all gen_length tokens even after a stop token (stop_early: false)");
  command
      ->add_option("--seed", flags.seed,
                   fmt::format("seed of every prompt's random stream [{}]", defaults.seed))
      ->check(kUnsigned);
  command
      ->add_option(
          "--batch-size", flags.batch_size,
          "prompts decoding at once; a finished one's row goes to the next prompt (continuous batching)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("-v,--verbose", flags.verbose, "print the resolved settings and a summary on stderr");
  return command;
}

GenerateOptions resolve_generate_options(const GenerateFlags& flags) {
  GenerateOptions options;
  GenerationConfig& config = options.config;
  if (flags.config_file) config = load_generation_config(*flags.config_file);
  if (flags.model) config.model = *flags.model;
  if (flags.prompts_file) config.prompts = *flags.prompts_file;
  if (flags.output) config.output = *flags.output;
  if (flags.seed) config.seed = *flags.seed;
  SamplingConfig& sampler = config.sampler;
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
  validate(sampler, flags.config_file ? *flags.config_file + " with the command-line flags" : "command line");

  if (config.model.empty()) fail_input("no model: pass --model DIR (or set 'model' in the --config file)");
  if (config.prompts.empty() && flags.prompts.empty()) {
    fail_input("no prompts: pass --prompts FILE or -p TEXT (or set 'prompts' in the --config file)");
  }
  options.model_config = flags.model_config.value_or("");
  options.prompts = flags.prompts;
  options.batch_size = flags.batch_size;
  options.verbose = flags.verbose;
  return options;
}

}  // namespace dlm::cli
