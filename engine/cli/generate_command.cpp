#include "engine/cli/generate_command.h"

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/cli/exit_codes.h"
#include "engine/cli/jsonl_writer.h"
#include "engine/cli/prompts_file.h"
#include "engine/runtime/engine.h"

namespace dlm::cli {

namespace {

std::string_view finish_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::StopToken:
      return "stop_token";
    case FinishReason::StopString:
      return "stop_string";
    case FinishReason::Length:
      break;
  }
  return "length";
}

// The settings a record was decoded with: the resolved config, as the YAML sampler section spells it.
nlohmann::ordered_json settings_record(const SamplingConfig& s, uint64_t seed) {
  nlohmann::ordered_json out = {{"method", std::string(enum_name(s.method, kMethodNames))},
                                {"gen_length", s.gen_length},
                                {"steps", s.steps},
                                {"block_length", s.block_length},
                                {"temperature", s.temperature},
                                {"remasking", std::string(enum_name(s.remasking, kRemaskingNames))},
                                {"commit", std::string(enum_name(s.commit, kCommitRuleNames))},
                                {"cache", std::string(enum_name(s.cache, kCacheModeNames))},
                                {"seed", seed}};
  if (s.method == Method::BlockDiffusion) out["sub_block_length"] = s.sub_block_length;
  if (s.commit == CommitRule::Threshold || s.commit == CommitRule::Dynamic) out["threshold"] = s.threshold;
  if (s.commit == CommitRule::Factor) out["factor"] = s.factor;
  if (s.commit == CommitRule::EntropyBound) out["entropy_bound"] = s.entropy_bound;
  return out;
}

nlohmann::ordered_json error_record(size_t id, const Error& error) {
  return {{"id", id}, {"error", error.what()}};
}

nlohmann::ordered_json result_record(const Engine& engine, size_t id, const std::string& prompt,
                                     const GenerationResult& result, const SamplingConfig& sampling,
                                     const nlohmann::ordered_json& settings) {
  return {{"id", id},
          {"prompt", prompt},
          {"text", engine.decode_generation(result.tokens, sampling.stop_strings)},
          {"token_ids", result.tokens},
          {"finish", std::string(finish_name(result.finish))},
          {"nfe", result.nfe},
          {"tokens_per_nfe", result.tokens_per_nfe()},
          {"seconds", result.seconds},
          {"timings",
           {{"queued", result.queued_seconds},
            {"prefill", result.phases.prefill},
            {"denoise", result.phases.denoise},
            {"commit", result.phases.commit}}},
          {"settings", settings}};
}

// Writes records in prompt order as they become ready, so every finished prefix is on disk.
class OrderedOutput {
 public:
  explicit OrderedOutput(JsonlWriter& writer) : writer_(writer) {}
  void put(size_t id, nlohmann::ordered_json record) {
    failed_ += record.contains("error") ? 1 : 0;
    pending_.emplace(id, std::move(record));
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it)) {
      writer_.write(it->second);
      ++next_;
    }
  }
  size_t failed() const { return failed_; }

 private:
  JsonlWriter& writer_;
  std::map<size_t, nlohmann::ordered_json> pending_;
  size_t next_ = 0, failed_ = 0;
};

}  // namespace

int run_generate(const GenerateOptions& options) {
  const GenerationConfig& config = options.config;
  std::vector<std::string> prompts;
  if (!config.prompts.empty()) prompts = read_prompts_file(config.prompts);
  prompts.insert(prompts.end(), options.prompts.begin(), options.prompts.end());
  if (prompts.empty()) fail_input("{}: no prompts (every line is blank)", config.prompts);

  const auto start = std::chrono::steady_clock::now();
  Engine engine(config.model, EngineOptions{0, options.model_config});
  const SamplingConfig sampling = engine.resolve(config.sampler);
  if (options.verbose) {
    GenerationConfig resolved = config;
    resolved.sampler = sampling;
    std::cerr << to_yaml(resolved);
  }
  const nlohmann::ordered_json settings = settings_record(sampling, config.seed);

  JsonlWriter writer(config.output);  // opened once everything else is known to be good
  OrderedOutput output(writer);
  // A prompt that cannot be decoded (too long, empty) gets its error record; the others decode together.
  std::vector<GenerationRequest> requests;
  std::vector<size_t> request_ids;
  for (size_t id = 0; id < prompts.size(); ++id) {
    try {
      requests.push_back(engine.make_request(prompts[id], sampling, config.seed));
      request_ids.push_back(id);
    } catch (const InputError& error) {
      output.put(id, error_record(id, error));
    }
  }
  engine.generate(requests, sampling, options.batch_size, [&](size_t r, GenerationResult result) {
    const size_t id = request_ids[r];
    try {
      output.put(id, result_record(engine, id, prompts[id], result, sampling, settings));
    } catch (const InputError& error) {
      output.put(id, error_record(id, error));
    }
  });
  if (options.verbose) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("dlm generate: {} prompts, {} ok, {} failed, {:.2f} s\n", prompts.size(),
                             prompts.size() - output.failed(), output.failed(), seconds);
  }
  return output.failed() == 0 ? kExitOk : kExitItemsFailed;
}

}  // namespace dlm::cli
