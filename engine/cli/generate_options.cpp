#include "engine/cli/generate_options.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace dlm::cli {

CLI::App* add_generate_command(CLI::App& app, GenerateFlags& flags) {
  CLI::App* command = app.add_subcommand("generate",
                                         "Generate a completion for every prompt (masked diffusion, block "
                                         "diffusion or autoregressive decoding) and write one JSON record "
                                         "per prompt.");
  command->footer(
      "Prompts: -p TEXT, a text file (one prompt per line, blank lines skipped) or a .jsonl file, one\n"
      "object per line:\n"
      "  {\"id\": \"q1\", \"prompt\": \"...\"}\n"
      "  {\"id\": 7, \"messages\": [{\"role\": \"user\", \"content\": \"...\"}], \"steps\": 64, \"seed\": "
      "3}\n"
      "  \"expected\" (an answer, kept for scoring) and any sampler key or \"seed\" may be added per item.\n"
      "Settings, each over the one before: defaults < the model's (its method, block size, overlay) <\n"
      "--config file < flags < the item's own keys.\n"
      "\n"
      "Records (JSON Lines, written and flushed one by one, in prompt order):\n"
      "  {\"id\", \"prompt\" | \"messages\", \"text\", \"token_ids\", \"finish\", \"nfe\", "
      "\"tokens_per_nfe\",\n"
      "   \"seconds\", \"timings\", \"settings\"}\n"
      "  {\"id\", \"error\"} for an item that failed (a malformed line, a prompt longer than the context);\n"
      "  the others go on, and the exit code is 1.\n"
      "'text' ends before the first stop token and is cut at the first stop string; 'token_ids' holds\n"
      "all gen_length generated tokens, or those up to and including the stop token when stop_early\n"
      "ends the request ('finish': length, stop_token or stop_string). A BOS token is put before each\n"
      "prompt when the tokenizer has one. samplers/README.md lists the settings of each published method.\n"
      "\n"
      "Examples:\n"
      "  dlm generate -m diffusion-11m -p 'The king said' --gen-length 64 --steps 64\n"
      "  dlm generate -m models/diffusion-11m --prompts tasks.jsonl -o out.jsonl --commit threshold\n"
      "  dlm generate -m models/diffusion-11m --prompts tasks.jsonl -o out.jsonl --resume\n");
  const GenerationConfig defaults;
  // A flag given twice takes its last value, so a script can append overrides.
  command->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command
      ->add_option("--config", flags.config_file,
                   "YAML run config (see configs/README.md); flags override it")
      ->check(CLI::ExistingFile);
  command->add_option(
      "-m,--model", flags.model,
      "model directory (config.json, *.safetensors, tokenizer), or the name of a shipped model "
      "(models/NAME)");
  command
      ->add_option("--model-config", flags.model_config,
                   "model overlay (YAML): mask and stop tokens, logit shift, block size, chat template; "
                   "overrides the model's own files (see configs/README.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--prompts", flags.prompts_file,
                      "prompts file: one prompt per line, or JSON Lines when the name ends in .jsonl");
  command->add_option("-p,--prompt", flags.prompts, "a prompt (repeatable), after those of --prompts")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command->add_option("-o,--out", flags.output, "output file (JSON Lines); default: standard output");
  add_sampler_flags(*command, flags.sampler);
  add_device_flags(*command, flags.device);
  command
      ->add_option("--seed", flags.seed,
                   fmt::format("seed of every prompt's random stream [{}]", defaults.seed))
      ->check(kUnsignedFlag);
  command
      ->add_option(
          "--batch-size", flags.batch_size,
          "prompts decoding at once; a finished one's row goes to the next prompt (continuous batching)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("--chat", flags.chat,
                    "wrap each plain prompt in the model's chat template as one user turn (JSONL items with "
                    "\"messages\" always use the template)");
  command->add_flag("--print-config", flags.print_config,
                    "print the resolved run settings as YAML (a valid --config file) and exit");
  command->add_flag("--visual", flags.visual,
                    "show each prompt's canvas filling in, step by step, on stderr (redrawn in place on a "
                    "terminal, one line per step otherwise)");
  command->add_flag("--resume", flags.resume,
                    "append to --out, skipping items whose ids it already holds (a killed run's output is "
                    "kept; a partly written last line is dropped and redone)");
  command->add_flag("--no-progress", flags.no_progress,
                    "no progress bar (it is drawn on stderr only when stderr is a terminal)");
  command->add_flag("-v,--verbose", flags.verbose, "print the resolved settings and a summary on stderr");
  return command;
}

GenerateOptions resolve_generate_options(const GenerateFlags& flags) {
  GenerateOptions options;
  GenerationConfig& config = options.config;
  if (flags.config_file) {
    RunConfigFile file = load_run_config(*flags.config_file);
    config = std::move(file.config);
    options.layers.config_sampler = std::move(file.sampler);
  }
  if (flags.model) config.model = *flags.model;
  if (flags.prompts_file) config.prompts = *flags.prompts_file;
  if (flags.output) config.output = *flags.output;
  if (flags.seed) config.seed = *flags.seed;
  options.layers.flags = flags.sampler;
  options.layers.seed = config.seed;
  // The flags over the file, checked before the model loads; the model's defaults join them later.
  apply_sampler_flags(flags.sampler, config.sampler);
  validate(config.sampler,
           flags.config_file ? *flags.config_file + " with the command-line flags" : "command line");

  if (config.model.empty())
    fail_input("no model: pass --model DIR|NAME (or set 'model' in the --config file)");
  if (config.prompts.empty() && flags.prompts.empty() && !flags.print_config) {
    fail_input("no prompts: pass --prompts FILE or -p TEXT (or set 'prompts' in the --config file)");
  }
  if (flags.resume && config.output.empty()) {
    fail_input("--resume needs --out FILE (or 'output' in the --config file): the file whose ids are done");
  }
  options.model_config = flags.model_config.value_or("");
  options.device = flags.device;
  options.prompts = flags.prompts;
  options.batch_size = flags.batch_size;
  options.chat = flags.chat;
  options.print_config = flags.print_config;
  options.visual = flags.visual;
  options.resume = flags.resume;
  options.progress = !flags.no_progress;
  options.verbose = flags.verbose;
  return options;
}

}  // namespace dlm::cli
