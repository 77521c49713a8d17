#include "engine/cli/info_command.h"

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/cli/exit_codes.h"
#include "engine/cli/model_path.h"
#include "engine/cli/sampling_record.h"
#include "engine/runtime/model_report.h"

namespace dlm::cli {

namespace {

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

std::string human_count(int64_t count) {
  if (count >= 1'000'000'000) return fmt::format("{:.2f} B", static_cast<double>(count) / 1e9);
  if (count >= 1'000'000) return fmt::format("{:.2f} M", static_cast<double>(count) / 1e6);
  if (count >= 1'000) return fmt::format("{:.1f} K", static_cast<double>(count) / 1e3);
  return fmt::format("{}", count);
}

// The default settings on one line, as `dlm generate` flags would set them.
std::string default_sampler_text(const SamplingConfig& s) {
  std::string text = fmt::format("{}, gen_length {}", enum_name(s.method, kMethodNames), s.gen_length);
  if (s.method == Method::Autoregressive) return text + fmt::format(", temperature {}", s.temperature);
  return text + fmt::format(", steps {}, block_length {}, {} remasking, commit {}, temperature {}", s.steps,
                            s.block_length, enum_name(s.remasking, kRemaskingNames),
                            enum_name(s.commit, kCommitRuleNames), s.temperature);
}

nlohmann::ordered_json to_json(const ModelReport& report) {
  nlohmann::ordered_json weights = nlohmann::ordered_json::object();
  for (const auto& [dtype, entry] : report.backbone.checkpoint_dtypes)
    weights[dtype] = {{"tensors", entry.tensors}, {"bytes", entry.bytes}};
  nlohmann::ordered_json tokens = nlohmann::ordered_json::array();
  for (const TokenReport& token : report.tokens)
    tokens.push_back({{"role", token.role}, {"id", token.id}, {"text", token.text}});
  return {
      {"model", report.dir},
      {"family", report.family_key},
      {"architecture", report.architecture},
      {"decoding", report.decoding},
      {"attention", report.attention},
      {"backbone", report.backbone.architecture},
      {"parameters", report.backbone.parameters},
      {"weights", weights},
      {"weight_bytes", report.weight_bytes},
      {"cache_bytes_per_position", report.backbone.cache_bytes_per_position},
      {"context", report.max_positions},
      {"tokenizer_tokens", report.tokenizer_tokens},
      {"special_tokens", tokens},
      {"logit_shift", report.logit_shift},
      {"block_size", report.block_size},
      {"chat_template", report.chat_template},
      {"tokenizer", report.tokenizer_kind},
      {"default_sampler", sampling_record(report.default_sampler, GenerationConfig{}.seed)},
      {"unused_tensors", report.backbone.unused_tensors},
  };
}

void print_text(const ModelReport& r) {
  auto line = [](std::string_view key, const std::string& value) {
    std::cout << fmt::format("{:<15} {}\n", key, value);
  };
  line("model", r.dir);
  line("family", fmt::format("{} ({}), {}, {} attention", r.family, r.architecture, r.decoding, r.attention));
  line("backbone", r.backbone.architecture);
  line("parameters", fmt::format("{} ({})", r.backbone.parameters, human_count(r.backbone.parameters)));
  std::vector<std::string> dtypes;
  for (const auto& [dtype, entry] : r.backbone.checkpoint_dtypes)
    dtypes.push_back(fmt::format("{} {} ({} tensor{})", dtype, human_bytes(entry.bytes), entry.tensors,
                                 entry.tensors == 1 ? "" : "s"));
  line("weights", fmt::format("{} in all: {}", human_bytes(r.weight_bytes), fmt::join(dtypes, ", ")));
  line("KV cache",
       fmt::format("{} per position (f32), {} at the full context of {}",
                   human_bytes(r.backbone.cache_bytes_per_position),
                   human_bytes(r.backbone.cache_bytes_per_position * r.max_positions), r.max_positions));
  line("tokenizer", fmt::format("{}, {} tokens", r.tokenizer_kind, r.tokenizer_tokens));
  std::vector<std::string> tokens;
  for (const TokenReport& token : r.tokens)
    tokens.push_back(fmt::format("{} {} {:?}", token.role, token.id, token.text));
  line("special tokens", tokens.empty() ? "none" : fmt::format("{}", fmt::join(tokens, ", ")));
  line("logit shift",
       r.logit_shift == 0 ? "none: row i predicts position i" : "1: row i - 1 predicts position i");
  if (r.block_size > 0) line("block size", std::to_string(r.block_size));
  line("chat template", r.chat_template ? "yes" : "none");
  line("sampler", default_sampler_text(r.default_sampler));
  // Tensors the model does not read: a checkpoint of a neighbouring architecture would show here.
  const std::vector<std::string>& unused = r.backbone.unused_tensors;
  if (!unused.empty()) {
    const size_t shown = std::min<size_t>(unused.size(), 5);
    line("unused tensors",
         fmt::format("{}: {}{}", unused.size(), fmt::join(unused.begin(), unused.begin() + shown, ", "),
                     unused.size() > shown ? ", ..." : ""));
  }
}

}  // namespace

CLI::App* add_info_command(CLI::App& app, InfoFlags& flags) {
  CLI::App* command = app.add_subcommand(
      "info",
      "Describe a model: family, architecture, parameters, dtypes, memory, tokenizer, special tokens and the "
      "sampler it decodes with by default.");
  command->footer("Example:\n  dlm info -m diffusion-11m\n  dlm info -m models/ar-11m --json\n");
  command
      ->add_option("-m,--model", flags.model,
                   "model directory (config.json, *.safetensors, tokenizer), or the name of a shipped model "
                   "(models/NAME)")
      ->required();
  command
      ->add_option("--model-config", flags.model_config, "model overlay (YAML) applied as by 'dlm generate'")
      ->check(CLI::ExistingFile);
  command->add_flag("--json", flags.json, "print one JSON object instead of text");
  return command;
}

int run_info(const InfoFlags& flags) {
  const ModelReport report =
      describe_model(resolve_model_dir(flags.model), ModelLoadOptions{flags.model_config.value_or("")});
  if (flags.json) {
    std::cout << to_json(report).dump(2) << "\n";
  } else {
    print_text(report);
  }
  return kExitOk;
}

}  // namespace dlm::cli
