#include "engine/cli/generate_command.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/cli/exit_codes.h"
#include "engine/cli/jsonl_writer.h"
#include "engine/cli/prompts_file.h"
#include "engine/runtime/engine.h"

namespace dlm::cli {

namespace {

nlohmann::ordered_json settings_record(const GenerationConfig& config) {
  const SamplingConfig& s = config.sampler;
  return {{"gen_length", s.gen_length},
          {"steps", s.steps},
          {"block_length", s.block_length},
          {"temperature", s.temperature},
          {"remasking", std::string(enum_name(s.remasking, kRemaskingNames))},
          {"seed", config.seed}};
}

nlohmann::ordered_json error_record(size_t id, const Error& error) {
  return {{"id", id}, {"error", error.what()}};
}

// Generates for prompts [first, first + count) as one batch and writes their records in prompt order. An
// item whose input is bad gets an error record; the others go on. Returns the number of failed items.
size_t run_batch(Engine& engine, const GenerationConfig& config, const std::vector<std::string>& prompts,
                 size_t first, size_t count, JsonlWriter& writer) {
  std::vector<nlohmann::ordered_json> records(count);
  std::vector<GenerationRequest> requests;
  std::vector<size_t> request_items;  // which item each request belongs to
  for (size_t i = 0; i < count; ++i) {
    try {
      requests.push_back(engine.make_request(prompts[first + i], config.sampler, config.seed));
      request_items.push_back(i);
    } catch (const InputError& error) {
      records[i] = error_record(first + i, error);
    }
  }
  const std::vector<GenerationResult> results = engine.generate(requests, config.sampler);
  const nlohmann::ordered_json settings = settings_record(config);
  for (size_t r = 0; r < results.size(); ++r) {
    const size_t i = request_items[r];
    const GenerationResult& result = results[r];
    try {
      records[i] = {{"id", first + i},
                    {"prompt", prompts[first + i]},
                    {"text", engine.decode_generation(result.tokens)},
                    {"token_ids", result.tokens},
                    {"nfe", result.nfe},
                    {"seconds", result.seconds},
                    {"settings", settings}};
    } catch (const InputError& error) {
      records[i] = error_record(first + i, error);
    }
  }
  size_t failed = 0;
  for (const nlohmann::ordered_json& record : records) {
    failed += record.contains("error") ? 1 : 0;
    writer.write(record);
  }
  return failed;
}

}  // namespace

int run_generate(const GenerateOptions& options) {
  const GenerationConfig& config = options.config;
  std::vector<std::string> prompts;
  if (!config.prompts.empty()) prompts = read_prompts_file(config.prompts);
  prompts.insert(prompts.end(), options.prompts.begin(), options.prompts.end());
  if (prompts.empty()) fail_input("{}: no prompts (every line is blank)", config.prompts);
  if (options.verbose) std::cerr << to_yaml(config);

  const auto start = std::chrono::steady_clock::now();
  Engine engine(config.model, EngineOptions{0, options.model_config});
  JsonlWriter writer(config.output);  // opened once everything else is known to be good
  size_t failed = 0;
  const size_t batch = static_cast<size_t>(options.batch_size);
  for (size_t first = 0; first < prompts.size(); first += batch) {
    failed += run_batch(engine, config, prompts, first, std::min(batch, prompts.size() - first), writer);
  }
  if (options.verbose) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("dlm generate: {} prompts, {} ok, {} failed, {:.2f} s\n", prompts.size(),
                             prompts.size() - failed, failed, seconds);
  }
  return failed == 0 ? kExitOk : kExitItemsFailed;
}

}  // namespace dlm::cli
