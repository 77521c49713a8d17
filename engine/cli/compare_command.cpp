#include "engine/cli/compare_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "engine/cli/compare_report.h"
#include "engine/cli/compare_runs.h"
#include "engine/cli/exit_codes.h"
#include "engine/cli/model_path.h"
#include "engine/cli/run_settings.h"
#include "engine/io/generation_config.h"
#include "engine/runtime/perplexity.h"

namespace dlm::cli {

namespace {

constexpr const char* kSweepKeys = "steps, threshold, block_length, factor";

// --sweep KEY=V1,V2,...: one parallel run per value, in increasing order.
struct Sweep {
  std::string key;
  std::vector<double> values;
};

double parse_sweep_value(const std::string& spec, bool integer, std::string_view text) {
  double value = 0.0;
  const char* end = text.data() + text.size();
  if (integer) {
    int64_t parsed = 0;
    const auto [at, error] = std::from_chars(text.data(), end, parsed);
    if (error != std::errc() || at != end || parsed < 1) {
      fail_input("--sweep '{}': '{}' is not an integer >= 1", spec, text);
    }
    value = static_cast<double>(parsed);
  } else {
    const auto [at, error] = std::from_chars(text.data(), end, value);
    if (error != std::errc() || at != end || !std::isfinite(value) || value <= 0.0) {
      fail_input("--sweep '{}': '{}' is not a number > 0", spec, text);
    }
  }
  return value;
}

Sweep parse_sweep(const std::string& spec) {
  const size_t equals = spec.find('=');
  if (equals == std::string::npos) {
    fail_input("--sweep '{}': expected KEY=V1,V2,... with KEY one of {}", spec, kSweepKeys);
  }
  Sweep sweep{spec.substr(0, equals), {}};
  const bool integer = sweep.key == "steps" || sweep.key == "block_length";
  if (!integer && sweep.key != "threshold" && sweep.key != "factor") {
    fail_input("--sweep '{}': unknown key '{}'; the keys that can be swept are {}", spec, sweep.key,
               kSweepKeys);
  }
  const std::string_view list = std::string_view(spec).substr(equals + 1);
  for (size_t begin = 0; begin <= list.size();) {
    const size_t comma = std::min(list.find(',', begin), list.size());
    const std::string_view text = list.substr(begin, comma - begin);
    if (text.empty()) fail_input("--sweep '{}': an empty value", spec);
    const double value = parse_sweep_value(spec, integer, text);
    if (std::find(sweep.values.begin(), sweep.values.end(), value) != sweep.values.end()) {
      fail_input("--sweep '{}': {} is given twice", spec, text);
    }
    sweep.values.push_back(value);
    begin = comma + 1;
  }
  std::sort(sweep.values.begin(), sweep.values.end());
  return sweep;
}

// The run's layers with the swept key set as its flag would set it. A threshold or factor is read only under
// its commit rule, which the sweep therefore sets too (a threshold keeps --commit dynamic, which reads it).
SettingsLayers sweep_point(SettingsLayers layers, const Sweep& sweep, double value) {
  SamplerFlags& flags = layers.flags;
  auto require_commit = [&](std::initializer_list<std::string_view> rules) {
    if (flags.commit && std::find(rules.begin(), rules.end(), *flags.commit) == rules.end()) {
      fail_input("--sweep {}: --commit {} does not read the {}", sweep.key, *flags.commit, sweep.key);
    }
    if (!flags.commit) flags.commit = std::string(*rules.begin());
  };
  if (sweep.key == "steps") {
    flags.steps = static_cast<int64_t>(value);
  } else if (sweep.key == "block_length") {
    flags.block_length = static_cast<int64_t>(value);
  } else if (sweep.key == "threshold") {
    flags.threshold = value;
    require_commit({"threshold", "dynamic"});
  } else {
    flags.factor = value;
    require_commit({"factor"});
  }
  return layers;
}

double swept_value(const SamplingConfig& s, const std::string& key) {
  if (key == "steps") return static_cast<double>(s.steps);
  if (key == "block_length") return static_cast<double>(s.block_length);
  return key == "threshold" ? s.threshold : s.factor;
}

// The parallel model itself decoding one token at a time, left to right: block diffusion with blocks of one
// token, or LLaDA's semi-autoregressive decoding with blocks of one token and one step per block.
SamplingConfig one_token_at_a_time(const SamplingConfig& parallel) {
  SamplingConfig s = parallel;
  s.block_length = 1;
  s.sub_block_length = 0;
  s.commit = CommitRule::Schedule;
  s.remasking = Remasking::LowConfidence;  // one candidate per step: the ranking has nothing to choose
  s.cache = CacheMode::None;
  if (parallel.method == Method::BlockDiffusion) {
    s.steps = 1;
  } else {
    s.method = Method::Llada;
    s.steps = s.gen_length;
  }
  return s;
}

// Another model's autoregressive decoding of as many tokens, drawn by the same token rule.
SamplingConfig autoregressive_like(const SamplingConfig& parallel) {
  SamplingConfig s;
  s.method = Method::Autoregressive;
  s.gen_length = parallel.gen_length;
  s.temperature = parallel.temperature;
  s.top_k = parallel.top_k;
  s.top_p = parallel.top_p;
  s.stop_early = parallel.stop_early;
  return s;
}

bool is_autoregressive(const Engine& engine) {
  return engine.spec().family->decoding == DecodingKind::Autoregressive;
}

// An output file, opened before any decoding so that a bad path costs nothing.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path)
      : path_(path), stream_(path, std::ios::binary | std::ios::trunc) {
    if (!stream_) fail_input("{}: cannot open for writing: {}", path, std::strerror(errno));
  }
  void write(const std::string& text) {
    stream_ << text;
    stream_.flush();
    if (!stream_) fail("{}: write failed: {}", path_, std::strerror(errno));
  }

 private:
  std::string path_;
  std::ofstream stream_;
};

// The runs: the baseline, then one parallel run per sweep value, each checked on its own settings before
// anything decodes (the parallel runs first, so that an error names the sweep point). The baseline starts
// from the first parallel run's settings: the keys a sweep sets are those it replaces.
std::vector<RunSpec> plan_runs(Engine& parallel, Engine& baseline, const SettingsLayers& layers,
                               const std::optional<Sweep>& sweep, const std::string& x_key) {
  std::vector<RunSpec> specs(1);
  const std::vector<double> values =
      sweep ? sweep->values
            : std::vector{swept_value(item_settings(parallel, layers, nullptr).sampling, x_key)};
  for (const double value : values) {
    const SettingsLayers point = sweep ? sweep_point(layers, *sweep, value) : layers;
    specs.push_back(
        {sweep ? fmt::format("{}={:g}", sweep->key, value) : "parallel", &parallel,
         [&parallel, point](const PromptItem* item) { return item_settings(parallel, point, item); }, value});
  }
  const SettingsLayers base = sweep ? sweep_point(layers, *sweep, values.front()) : layers;
  specs.front() = {"ar", &baseline,
                   [&parallel, &baseline, base](const PromptItem* item) {
                     ItemSettings settings = item_settings(parallel, base, item);
                     settings.sampling = &baseline != &parallel ? autoregressive_like(settings.sampling)
                                                                : one_token_at_a_time(settings.sampling);
                     validate(settings.sampling, "the autoregressive baseline");
                     settings.sampling = baseline.resolve(settings.sampling);
                     return settings;
                   },
                   std::nullopt};
  auto check = [](const RunSpec& spec) {
    try {
      spec.settings(nullptr);
    } catch (const InputError& error) {
      fail_input("run {}: {}", spec.name, error.what());
    }
  };
  std::for_each(specs.begin() + 1, specs.end(), check);
  check(specs.front());
  return specs;
}

}  // namespace

CLI::App* add_compare_command(CLI::App& app, CompareFlags& flags) {
  CLI::App* command = app.add_subcommand(
      "compare",
      "Decode the same prompts in parallel (masked or block diffusion) and autoregressively, and compare "
      "speed, NFE and quality in a table, a JSON report and an SVG chart.");
  command->footer(
      "The autoregressive baseline is --ar-model decoding with method autoregressive (the same\n"
      "gen_length, temperature, top-k and top-p); without it, the --model itself one token at a time:\n"
      "block diffusion with block_length 1, or llada with block_length 1 and steps = gen_length.\n"
      "\n"
      "Per run: tokens/s (positions committed, a diffusion canvas's padding after the stop token\n"
      "included, over the run's wall time), request latency p50 and p95, mean NFE, tokens per NFE; exact\n"
      "match with each JSONL item's \"expected\" (both trimmed; over the items that have one); texts equal\n"
      "to the baseline's, and the mean share of its tokens matched position by position; with --judge,\n"
      "generative perplexity: exp of the judge's mean NLL per generated token over all of the run's\n"
      "outputs. Timings follow one warm-up forward per model; they are figures for the runs of one\n"
      "command on one machine, not a benchmark. An item that fails gets an error in every run and the\n"
      "rest go on (exit code 1). A JSONL item's own settings apply over --sweep.\n"
      "\n"
      "Examples:\n"
      "  dlm compare -m diffusion-11m --prompts tasks.jsonl --sweep steps=16,32,64 \\\n"
      "      --report r.json --chart r.svg\n"
      "  dlm compare -m diffusion-11m --ar-model ar-11m --judge ar-11m --prompts tasks.jsonl \\\n"
      "      --gen-length 24 --sweep threshold=0.5,0.7,0.9\n");
  command->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command
      ->add_option(
          "--config", flags.config_file,
          "YAML run config as 'dlm generate' reads it (model, prompts, seed, sampler); flags override it")
      ->check(CLI::ExistingFile);
  command
      ->add_option("-m,--model", flags.model,
                   "the parallel model: a model directory, or the name of a shipped model (models/NAME)")
      ->option_text("DIR|NAME");
  command
      ->add_option("--model-config", flags.model_config,
                   "model overlay (YAML) of --model, as in 'dlm generate'")
      ->check(CLI::ExistingFile);
  command
      ->add_option("--ar-model", flags.ar_model,
                   "an autoregressive model for the baseline; default: --model one token at a time")
      ->option_text("DIR|NAME");
  command
      ->add_option("--judge", flags.judge,
                   "an autoregressive model that scores every output's generative perplexity")
      ->option_text("DIR|NAME");
  command
      ->add_option("--prompts", flags.prompts_file,
                   "prompts file: one prompt per line, or JSON Lines (.jsonl) with \"expected\" answers")
      ->option_text("FILE");
  command->add_option("-p,--prompt", flags.prompts, "a prompt (repeatable), after those of --prompts")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command->add_flag("--chat", flags.chat, "wrap each prompt in the model's chat template");
  add_sampler_flags(*command, flags.sampler);
  add_device_flags(*command, flags.device);
  command
      ->add_option("--sweep", flags.sweep,
                   fmt::format("one parallel run per value, KEY one of {} (threshold "
                               "implies --commit threshold); default: the one parallel setting",
                               kSweepKeys))
      ->option_text("KEY=V1,V2,...");
  command->add_option("--seed", flags.seed, "seed of every prompt's random stream [0]")->check(kUnsignedFlag);
  command->add_option("--batch-size", flags.batch_size, "prompts decoding at once, in every run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--report", flags.report,
                   "write a JSON report: every run's settings and metrics, every item's outputs")
      ->option_text("FILE");
  command
      ->add_option("--chart", flags.chart,
                   "write an SVG chart of quality and tokens/s against the swept value")
      ->option_text("FILE");
  command->add_flag("--no-progress", flags.no_progress, "no progress bar on a terminal");
  return command;
}

int run_compare(const CompareFlags& flags) {
  GenerationConfig config;
  SettingsLayers layers;
  if (flags.config_file) {
    RunConfigFile file = load_run_config(*flags.config_file);
    config = std::move(file.config);
    layers.config_sampler = std::move(file.sampler);
  }
  const std::string model = flags.model.value_or(config.model);
  const std::string prompts_file = flags.prompts_file.value_or(config.prompts);
  if (model.empty())
    fail_input("no model: pass --model DIR|NAME, the parallel model (or set 'model' in --config)");
  if (prompts_file.empty() && flags.prompts.empty()) {
    fail_input("no prompts: pass --prompts FILE or -p TEXT (or set 'prompts' in the --config file)");
  }
  layers.flags = flags.sampler;
  layers.seed = flags.seed.value_or(config.seed);
  const std::optional<Sweep> sweep = flags.sweep ? std::optional(parse_sweep(*flags.sweep)) : std::nullopt;
  std::vector<PromptItem> items = collect_prompt_items(prompts_file, flags.prompts);

  const std::unique_ptr<Engine> parallel_engine =
      open_engine(resolve_model_dir(model), flags.model_config.value_or(""), flags.device);
  Engine& parallel = *parallel_engine;
  if (is_autoregressive(parallel)) {
    fail_input(
        "--model {}: an autoregressive model has nothing to decode in parallel; give a diffusion model "
        "as --model (and this one as --ar-model)",
        parallel.model_dir());
  }
  std::unique_ptr<Engine> ar_model, own_judge;
  if (flags.ar_model) {
    ar_model = open_engine(resolve_model_dir(*flags.ar_model), "", flags.device);
    if (!is_autoregressive(*ar_model)) {
      fail_input("--ar-model {}: not an autoregressive model (this {} model decodes by {})",
                 ar_model->model_dir(), ar_model->spec().family->title,
                 decoding_name(ar_model->spec().family->decoding));
    }
  }
  Engine* judge = nullptr;  // the AR model itself when it is the judge too: one copy of the weights
  if (flags.judge) {
    const std::string judge_dir = resolve_model_dir(*flags.judge);
    if (ar_model && ar_model->model_dir() == judge_dir) {
      judge = ar_model.get();
    } else {
      own_judge = open_engine(judge_dir, "", flags.device);
      judge = own_judge.get();
    }
    check_judge(*judge);
  }
  Engine& baseline = ar_model ? *ar_model : parallel;

  const std::string x_key = sweep ? sweep->key : "steps";
  const std::vector<RunSpec> specs = plan_runs(parallel, baseline, layers, sweep, x_key);
  std::optional<OutputFile> report, chart;
  if (flags.report) report.emplace(*flags.report);
  if (flags.chart) chart.emplace(*flags.chart);

  Comparison comparison{std::move(items),
                        parallel.model_dir(),
                        baseline.model_dir(),
                        judge ? judge->model_dir() : "",
                        sweep ? std::optional(sweep->key) : std::nullopt,
                        x_key,
                        {}};
  warm_up(parallel);
  if (ar_model) warm_up(*ar_model);
  {  // the bar is cleared before the table
    ProgressBar progress(stderr, comparison.items.size() * specs.size(), !flags.no_progress);
    for (const RunSpec& spec : specs) {
      comparison.runs.push_back(decode_run(spec, comparison.items, flags.chat, flags.batch_size, progress));
    }
  }
  if (judge) {
    for (RunOutcome& run : comparison.runs)
      judge_run(*judge, *run.spec.engine, comparison.items, flags.chat, run);
  }

  const std::vector<RunMetrics> metrics = measure_runs(comparison, parallel.tokenizer());
  std::cout << format_table(comparison, metrics) << std::flush;
  if (report) {
    report->write(report_json(comparison, metrics)
                      .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
                  "\n");
  }
  if (chart) chart->write(render_svg(comparison_chart(comparison, metrics)));
  const bool failed =
      std::any_of(metrics.begin(), metrics.end(), [](const RunMetrics& m) { return m.failed > 0; });
  return failed ? kExitItemsFailed : kExitOk;
}

}  // namespace dlm::cli
