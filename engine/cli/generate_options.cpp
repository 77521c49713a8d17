#include "engine/cli/generate_options.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace dlm::cli {

namespace {

std::vector<std::string> remasking_spellings() {
  std::vector<std::string> names;
  for (const auto& entry : kRemaskingNames) names.emplace_back(entry.name);
  return names;
}

// CLI11 converts "-1" to an unsigned value by wrapping around; a seed must be written as it is meant.
const CLI::Validator kUnsigned(
    [](std::string& text) {
      return text.find_first_not_of("0123456789") == std::string::npos ? std::string()
                                                                       : "must be a non-negative integer";
    },
    "");

Remasking parse_remasking(const std::string& name) {
  for (const auto& entry : kRemaskingNames) {
    if (entry.name == name) return entry.value;
  }
  fail_input("--remasking: unknown value '{}'", name);  // unreachable after the flag's IsMember check
}

}  // namespace

CLI::App* add_generate_command(CLI::App& app, GenerateFlags& flags) {
  CLI::App* command = app.add_subcommand("generate",
                                         "Generate a completion for every prompt (LLaDA masked diffusion) "
                                         "and write one JSON record per prompt.");
  command->footer(
      "Records (JSON Lines, written and flushed one by one, in prompt order):\n"
      "  {\"id\", \"prompt\", \"text\", \"token_ids\", \"nfe\", \"seconds\", \"settings\"}\n"
      "  {\"id\", \"error\"} for a prompt that failed (e.g. longer than the model's context); the others go "
      "on.\n"
      "'text' ends before the first EOS; 'token_ids' holds all gen_length generated tokens. A BOS token is\n"
      "put before each prompt when the tokenizer has one.\n");
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
  command->add_option("--gen-length", flags.gen_length,
                      fmt::format("tokens to generate per prompt [{}]", defaults.sampler.gen_length));
  command->add_option(
      "--steps", flags.steps,
      fmt::format("denoising steps in total, split evenly over the blocks [{}]", defaults.sampler.steps));
  command->add_option("--block-length", flags.block_length,
                      fmt::format("semi-autoregressive block length [{}]", defaults.sampler.block_length));
  command->add_option("--temperature", flags.temperature,
                      fmt::format("0: greedy; > 0: Gumbel-max sampling [{}]", defaults.sampler.temperature));
  command
      ->add_option("--remasking", flags.remasking,
                   fmt::format("which predictions a step commits [{}]",
                               enum_name(defaults.sampler.remasking, kRemaskingNames)))
      ->check(CLI::IsMember(remasking_spellings()));
  command
      ->add_option("--seed", flags.seed,
                   fmt::format("seed of every prompt's random stream [{}]", defaults.seed))
      ->check(kUnsigned);
  command->add_option("--batch-size", flags.batch_size, "prompts decoded together in one batch")
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
  if (flags.gen_length) sampler.gen_length = *flags.gen_length;
  if (flags.steps) sampler.steps = *flags.steps;
  if (flags.block_length) sampler.block_length = *flags.block_length;
  if (flags.temperature) sampler.temperature = *flags.temperature;
  if (flags.remasking) sampler.remasking = parse_remasking(*flags.remasking);
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
