#include "engine/cli/bench_command.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <unordered_set>

#include "engine/backend/profiling_backend.h"
#include "engine/cli/bench_report.h"
#include "engine/cli/exit_codes.h"
#include "engine/cli/model_path.h"
#include "engine/cli/percentile.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/runtime/engine.h"

namespace dlm::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultBatchSize = 1;
constexpr int64_t kDefaultPromptLength = 64;

// ---- Flags ----------------------------------------------------------------------------------------------

std::string trimmed(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(" \t") - begin + 1));
}

// The items of a repeatable list flag: every entry split at its commas. InputError naming the flag for an
// empty item, so that a typo such as "1,,4" is not read as "1,4".
std::vector<std::string> list_items(std::string_view flag, const std::vector<std::string>& entries) {
  std::vector<std::string> items;
  for (const std::string& entry : entries) {
    for (size_t begin = 0;;) {
      const size_t end = std::min(entry.find(',', begin), entry.size());
      std::string item = trimmed(std::string_view(entry).substr(begin, end - begin));
      if (item.empty()) fail_input("{}: empty item in '{}' (expected a comma-separated list)", flag, entry);
      items.push_back(std::move(item));
      if (end == entry.size()) break;
      begin = end + 1;
    }
  }
  return items;
}

std::vector<int64_t> integer_list(std::string_view flag, const std::vector<std::string>& entries,
                                  int64_t least) {
  std::vector<int64_t> values;
  for (const std::string& item : list_items(flag, entries)) {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (error != std::errc() || end != item.data() + item.size() || value < least) {
      fail_input("{}: expected integers >= {}, got '{}'", flag, least, item);
    }
    values.push_back(value);
  }
  return values;
}

template <class E, size_t N>
std::vector<E> enum_list(std::string_view flag, const std::vector<std::string>& entries,
                         const EnumName<E> (&names)[N]) {
  std::vector<E> values;
  for (const std::string& item : list_items(flag, entries)) {
    const auto* found = std::find_if(std::begin(names), std::end(names),
                                     [&](const auto& entry) { return entry.name == item; });
    if (found == std::end(names)) {
      fail_input("{}: unknown value '{}' (expected one of {})", flag, item,
                 fmt::join(spellings(names), ", "));
    }
    values.push_back(found->value);
  }
  return values;
}

// The swept values as given. An empty axis takes the single value of the settings beneath; batch size and
// prompt length, which have none, take bench's defaults in parse_axes.
struct SweepAxes {
  std::vector<Method> methods;
  std::vector<CacheMode> caches;
  std::vector<CommitRule> commits;
  std::vector<int64_t> gen_lengths, block_lengths, steps, prompt_lengths, batch_sizes;
};

SweepAxes parse_axes(const BenchFlags& flags) {
  SweepAxes axes;
  axes.methods = enum_list("--method", flags.methods, kMethodNames);
  axes.caches = enum_list("--cache", flags.caches, kCacheModeNames);
  axes.commits = enum_list("--commit", flags.commits, kCommitRuleNames);
  axes.gen_lengths = integer_list("--gen-length", flags.gen_lengths, 1);
  axes.block_lengths = integer_list("--block-length", flags.block_lengths, 0);
  axes.steps = integer_list("--steps", flags.steps, 1);
  axes.prompt_lengths = integer_list("--prompt-length", flags.prompt_lengths, 1);
  axes.batch_sizes = integer_list("--batch-size", flags.batch_sizes, 1);
  if (axes.prompt_lengths.empty()) axes.prompt_lengths = {kDefaultPromptLength};
  if (axes.batch_sizes.empty()) axes.batch_sizes = {kDefaultBatchSize};
  return axes;
}

// A quoted word only where the shell would split or expand it.
std::string shell_word(const std::string& arg) {
  constexpr std::string_view kPlain =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-";
  if (!arg.empty() && arg.find_first_not_of(kPlain) == std::string::npos) return arg;
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string shell_command(const std::vector<std::string>& argv) {
  if (argv.empty()) return "dlm bench";
  std::vector<std::string> words;
  for (const std::string& arg : argv) words.push_back(shell_word(arg));
  return fmt::format("{}", fmt::join(words, " "));
}

// ---- Points and prompts ---------------------------------------------------------------------------------

template <class T>
std::vector<T> or_single(const std::vector<T>& given, T fallback) {
  return given.empty() ? std::vector<T>{fallback} : given;
}

// Every combination, the batch size varying fastest and the method slowest.
std::vector<SweepPoint> sweep_points(const SweepAxes& axes, const SamplingConfig& base) {
  std::vector<SweepPoint> points;
  SweepPoint point{base};
  SamplingConfig& s = point.sampling;
  for (Method method : or_single(axes.methods, base.method)) {
    s.method = method;
    for (CacheMode cache : or_single(axes.caches, base.cache)) {
      s.cache = cache;
      for (CommitRule commit : or_single(axes.commits, base.commit)) {
        s.commit = commit;
        for (int64_t gen_length : or_single(axes.gen_lengths, base.gen_length)) {
          s.gen_length = gen_length;
          for (int64_t block_length : or_single(axes.block_lengths, base.block_length)) {
            s.block_length = block_length;
            for (int64_t steps : or_single(axes.steps, base.steps)) {
              s.steps = steps;
              for (int64_t prompt_length : axes.prompt_lengths) {
                point.prompt_length = prompt_length;
                for (int64_t batch_size : axes.batch_sizes) {
                  point.batch_size = batch_size;
                  points.push_back(point);
                }
              }
            }
          }
        }
      }
    }
  }
  return points;
}

// The ids synthetic prompts draw from: the vocabulary less its special tokens, so a prompt reads to the model
// as ordinary text and never holds a mask or a stop.
std::vector<int32_t> ordinary_token_ids(Engine& engine) {
  const ModelSpec& spec = engine.spec();
  const SpecialTokens& special = engine.tokenizer().special_tokens();
  std::unordered_set<int32_t> excluded(spec.stop_token_ids.begin(), spec.stop_token_ids.end());
  for (const std::optional<int32_t>& id :
       {spec.mask_token_id, spec.bos_token_id, spec.pad_token_id, special.bos, special.eos, special.pad,
        special.unk, special.mask}) {
    if (id) excluded.insert(*id);
  }
  const int64_t vocab = std::min<int64_t>(engine.tokenizer().vocab_size(), engine.backbone().vocab_size());
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab; ++id) {
    if (engine.tokenizer().has_id(id) && !excluded.contains(id)) ids.push_back(id);
  }
  if (ids.empty())
    fail_input("{}: the vocabulary has no ordinary tokens to build prompts of", engine.model_dir());
  return ids;
}

// `count` prompts of exactly `length` tokens, BOS first when the model has one. Request i's prompt depends
// only on the seed, i and the length, so a larger batch holds the smaller one's prompts.
std::vector<GenerationRequest> synthetic_requests(const Engine& engine, const std::vector<int32_t>& ids,
                                                  int64_t count, int64_t length, uint64_t seed) {
  const RngStream stream{seed};
  const std::optional<int32_t> bos = engine.spec().bos_token_id;
  std::vector<GenerationRequest> requests(count);
  for (int64_t i = 0; i < count; ++i) {
    GenerationRequest& request = requests[i];
    request.seed = seed;
    if (bos) request.prompt.push_back(*bos);
    for (int64_t position = static_cast<int64_t>(request.prompt.size()); position < length; ++position) {
      request.prompt.push_back(ids[stream.draw(i, position).v[0] % ids.size()]);
    }
  }
  return requests;
}

// ---- Measurement ----------------------------------------------------------------------------------------

Measurement measure(Engine& engine, const std::vector<GenerationRequest>& requests,
                    const SamplingConfig& resolved, const RunCounts& runs) {
  const auto rows = static_cast<int64_t>(requests.size());  // every request decodes from the first step
  for (int64_t i = 0; i < runs.warmup; ++i) engine.generate(requests, resolved, rows);
  std::vector<double> run_seconds, forward_ms, latencies;
  double tokens = 0, nfe = 0, tokens_per_nfe = 0;
  for (int64_t i = 0; i < runs.repeat; ++i) {
    const Clock::time_point start = Clock::now();
    const std::vector<GenerationResult> results = engine.generate(requests, resolved, rows);
    run_seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    // All requests start together, so the one with the most NFE took part in every forward of the run and its
    // phase times add up to the run's forward time.
    const GenerationResult& longest = *std::max_element(
        results.begin(), results.end(), [](const auto& a, const auto& b) { return a.nfe < b.nfe; });
    const PhaseSeconds& phases = longest.phases;
    const double forward_seconds = phases.prefill + phases.denoise + phases.commit;
    forward_ms.push_back(longest.nfe > 0 ? 1e3 * forward_seconds / static_cast<double>(longest.nfe) : 0.0);
    for (const GenerationResult& result : results) {
      tokens += static_cast<double>(result.tokens.size());
      nfe += static_cast<double>(result.nfe);
      tokens_per_nfe += result.tokens_per_nfe();
      latencies.push_back(result.queued_seconds + result.seconds);
    }
  }
  const auto timed_requests = static_cast<double>(latencies.size());
  Measurement m;
  m.median_seconds = percentile(run_seconds, 0.5);
  m.min_seconds = *std::min_element(run_seconds.begin(), run_seconds.end());
  m.max_seconds = *std::max_element(run_seconds.begin(), run_seconds.end());
  m.tokens_per_second = tokens / static_cast<double>(runs.repeat) / m.median_seconds;
  m.nfe_per_request = nfe / timed_requests;
  m.tokens_per_nfe = tokens_per_nfe / timed_requests;
  m.ms_per_forward = percentile(forward_ms, 0.5);
  m.latency_p50 = percentile(latencies, 0.50);
  m.latency_p95 = percentile(latencies, 0.95);
  return m;
}

// ---- The run --------------------------------------------------------------------------------------------

// One more run with the profiler timing every op.
PointProfile profile_run(Engine& engine, ProfilingBackend& profiler,
                         const std::vector<GenerationRequest>& requests, const SamplingConfig& resolved) {
  profiler.clear();
  profiler.set_enabled(true);
  const Clock::time_point start = Clock::now();
  const std::vector<GenerationResult> results =
      engine.generate(requests, resolved, static_cast<int64_t>(requests.size()));
  PointProfile profile;
  profile.run_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  profiler.set_enabled(false);
  for (const GenerationResult& result : results) profile.forwards = std::max(profile.forwards, result.nfe);
  profile.ops = profiler.times();
  return profile;
}

// A point the model cannot decode (an invalid combination, a method it was not trained for, a prompt past its
// context) gets its error and the sweep goes on. With a profiler, the point gets one profiled run more.
BenchRow run_point(Engine& engine, const SweepPoint& point, const std::vector<int32_t>& ids, uint64_t seed,
                   const RunCounts& runs, ProfilingBackend* profiler) {
  BenchRow row;
  row.point = point;
  try {
    validate(point.sampling, "the point's settings");
    row.point.sampling = engine.resolve(point.sampling);
    const std::vector<GenerationRequest> requests =
        synthetic_requests(engine, ids, point.batch_size, point.prompt_length, seed);
    row.measured = measure(engine, requests, row.point.sampling, runs);
    if (profiler != nullptr) row.profile = profile_run(engine, *profiler, requests, row.point.sampling);
  } catch (const InputError& error) {
    row.error = error.what();
  }
  return row;
}

std::string utc_now() {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

}  // namespace

CLI::App* add_bench_command(CLI::App& app, BenchFlags& flags) {
  CLI::App* command = app.add_subcommand(
      "bench",
      "Time decoding over a sweep of settings (batch size, prompt and generation length, block length, "
      "steps, "
      "method, commit rule, cache mode) and print a table of medians with the command that reproduces it.");
  command->footer(
      "Every combination of the swept values is a point. A point decodes --batch-size synthetic prompts of\n"
      "--prompt-length tokens (ids drawn from --seed, BOS included) together: --warmup untimed runs, then\n"
      "--repeat timed ones. Unless --stop-early is given, every request decodes all gen_length tokens.\n"
      "Columns (times are medians over the timed runs unless named otherwise):\n"
      "  median s, min s, max s  wall time of a run (the whole batch decoded once)\n"
      "  tok/s                   generated tokens of a run / median s\n"
      "  NFE/req, tok/NFE        forwards a request took part in, and tokens it committed per forward\n"
      "                          (means over the timed requests)\n"
      "  ms/fwd                  time inside backbone forwards / forwards; the rest of a run is the\n"
      "                          sampler's own work\n"
      "  p50 s, p95 s            request latency over all timed requests (interpolated\n"
      "                          between ranks, as in dlm compare)\n"
      "A point the model cannot decode (an invalid combination, a method it was not trained for, a prompt\n"
      "past its context) gets a row with its error; the others are measured, and the exit code is 1.\n"
      "md puts the command, model, machine and date above the table and json beside the rows; csv holds\n"
      "the rows alone (the command is on stderr, with the progress).\n"
      "\n"
      "Example:\n"
      "  dlm bench -m diffusion-11m --method llada --batch-size 1,4 --prompt-length 32 --gen-length 64 \\\n"
      "      --steps 32,64 --repeat 5 -o bench.md\n");
  // A flag given twice takes its last value, as in 'dlm generate'; the swept lists gather every entry.
  command->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command
      ->add_option("-m,--model", flags.model, "model directory, or the name of a shipped model (models/NAME)")
      ->required();
  command
      ->add_option("--model-config", flags.model_config,
                   "model overlay (YAML) applied as by 'dlm generate' (see configs/README.md)")
      ->check(CLI::ExistingFile);
  command->add_option("--warmup", flags.warmup, "untimed runs per point before the timed ones")
      ->capture_default_str();
  command->add_option("--repeat", flags.repeat, "timed runs per point, whose median is reported")
      ->capture_default_str();
  command
      ->add_option("--seed", flags.seed,
                   "seed of the prompts' token ids and of every request's random stream")
      ->check(kUnsignedFlag)
      ->capture_default_str();
  command->add_option("--format", flags.format, "table format: md (markdown), csv or json")
      ->check(CLI::IsMember({"md", "csv", "json"}))
      ->capture_default_str();
  command->add_option("-o,--out", flags.output, "output file; default: standard output");
  command->add_flag("--profile", flags.profile,
                    "after each point's timed runs, one more run with every backend op timed alone (waiting "
                    "for the device around each): md and json show where the time goes, by op and by "
                    "operand shapes; csv leaves it out");
  add_device_flags(*command, flags.device);
  command->add_flag(
      "--stop-early", flags.stop_early,
      "end a request at a stop token, as 'dlm generate' does (runs may then decode fewer tokens)");

  const std::string sweep = "Swept (each a comma-separated list, repeatable; every combination is a point)";
  auto add_list = [&](const std::string& flag, std::vector<std::string>& values, const std::string& help,
                      const std::string& type) {
    command->add_option(flag, values, help)
        ->type_name(type)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->group(sweep);
  };
  add_list("--batch-size", flags.batch_sizes,
           fmt::format("requests per run, all decoding at once [{}]", kDefaultBatchSize), "LIST");
  add_list("--prompt-length", flags.prompt_lengths,
           fmt::format("prompt tokens per request, BOS included [{}]", kDefaultPromptLength), "LIST");

  std::unordered_set<std::string> own;
  for (const CLI::Option* option : command->get_options()) own.insert(option->get_name());
  add_sampler_flags(*command, flags.sampler);
  // The swept sampler keys take lists here: each single-value flag gives way to a list flag of the same name.
  const std::pair<const char*, std::vector<std::string>*> swept[] = {{"--method", &flags.methods},
                                                                     {"--gen-length", &flags.gen_lengths},
                                                                     {"--block-length", &flags.block_lengths},
                                                                     {"--steps", &flags.steps},
                                                                     {"--commit", &flags.commits},
                                                                     {"--cache", &flags.caches}};
  for (const auto& [flag, values] : swept) {
    CLI::Option* single = command->get_option(flag);
    const std::string help = single->get_description();
    // "TEXT:{auto,llada,...}" becomes "LIST:{auto,llada,...}", so the help keeps the choices.
    const std::string type = single->get_type_name();
    const std::string choices = type.substr(std::min(type.find(':'), type.size()));
    command->remove_option(single);
    add_list(flag, *values, help, "LIST" + choices);
  }
  command->remove_option(command->get_option("--no-stop-early"));  // bench's default; --stop-early inverts it
  for (const CLI::Option* option : command->get_options()) {
    if (!own.contains(option->get_name()) && option->get_group() != sweep) {
      command->get_option(option->get_name())
          ->group("Sampler (the same at every point; see 'dlm generate --help')");
    }
  }
  return command;
}

int run_bench(const BenchFlags& flags) {
  if (flags.repeat < 1) fail_input("--repeat: must be at least 1, got {}", flags.repeat);
  if (flags.warmup < 0) fail_input("--warmup: must be at least 0, got {}", flags.warmup);
  const SweepAxes axes = parse_axes(flags);  // a bad list fails before the model loads
  const std::string model_dir = resolve_model_dir(flags.model);

  BenchReport report;
  report.command = shell_command(flags.command_line);
  report.model = model_dir;
  report.date = utc_now();
  report.device = flags.device.device;
  report.threads =
      flags.device.threads > 0 ? flags.device.threads : static_cast<int>(std::thread::hardware_concurrency());
  report.runs = RunCounts{flags.warmup, flags.repeat};

  // --profile: the engine runs on a profiler around the device's backend, idle but for the profiled runs.
  std::unique_ptr<Backend> backend = make_backend(flags.device);
  ProfilingBackend* profiler = nullptr;
  if (flags.profile) {
    auto wrapped = std::make_unique<ProfilingBackend>(std::move(backend));
    profiler = wrapped.get();
    backend = std::move(wrapped);
  }
  Engine engine(std::move(backend), model_dir, engine_options(flags.model_config.value_or(""), flags.device));
  SamplingConfig base = engine.default_sampling();
  apply_sampler_flags(flags.sampler, base);
  base.stop_early = flags.stop_early;
  const std::vector<SweepPoint> points = sweep_points(axes, base);
  const std::vector<int32_t> ids = ordinary_token_ids(engine);

  // Opened before the runs, so that a bad path fails before any time is spent.
  std::ofstream file;
  if (flags.output) {
    file.open(*flags.output, std::ios::binary | std::ios::trunc);
    if (!file) fail_input("{}: cannot open for writing: {}", *flags.output, std::strerror(errno));
  }

  std::cerr << fmt::format("dlm bench: {} point{} on {}: {}\n", points.size(), points.size() == 1 ? "" : "s",
                           model_dir, report.command);
  for (size_t i = 0; i < points.size(); ++i) {
    BenchRow row = run_point(engine, points[i], ids, flags.seed, report.runs, profiler);
    std::cerr << fmt::format("dlm bench: [{}/{}] {}: {}\n", i + 1, points.size(), describe(row.point),
                             row.measured
                                 ? fmt::format("median {:.4f} s, {:.1f} tok/s", row.measured->median_seconds,
                                               row.measured->tokens_per_second)
                                 : "skipped: " + row.error);
    report.rows.push_back(std::move(row));
  }

  const std::string text = flags.format == "csv"    ? report_csv(report)
                           : flags.format == "json" ? report_json(report)
                                                    : report_markdown(report);
  std::ostream& out = flags.output ? static_cast<std::ostream&>(file) : std::cout;
  out << text << std::flush;
  if (!out) fail("{}: write failed", flags.output.value_or("standard output"));
  const bool all_ran = std::all_of(report.rows.begin(), report.rows.end(),
                                   [](const auto& r) { return r.measured.has_value(); });
  return all_ran ? kExitOk : kExitItemsFailed;
}

}  // namespace dlm::cli
