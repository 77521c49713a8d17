#include "engine/runtime/engine.h"

#include <algorithm>

#include "engine/runtime/model_sampling.h"

namespace dlm {

Engine::Engine(const std::string& model_dir, const EngineOptions& options)
    : Engine(std::make_unique<CpuBackend>(options.threads), model_dir, options) {}

Engine::Engine(std::unique_ptr<Backend> backend, const std::string& model_dir, const EngineOptions& options)
    : model_dir_(model_dir),
      backend_(std::move(backend)),
      model_(load_model(*backend_, model_dir, ModelLoadOptions{options.overlay_path, options.precision})),
      context_(model_decode_context(model_.spec, *model_.tokenizer)) {}

Engine::~Engine() = default;

SamplingConfig Engine::default_sampling() const {
  return model_default_sampling(model_.spec);
}

SamplingConfig Engine::resolve(const SamplingConfig& sampling) const {
  return resolve_for_model(sampling, model_.spec, context_, model_.backbone->vocab_size(), model_dir_);
}

GenerationRequest Engine::make_request(std::string_view prompt, const SamplingConfig& resolved,
                                       uint64_t seed) const {
  GenerationRequest request;
  request.seed = seed;
  if (model_.spec.bos_token_id) request.prompt.push_back(*model_.spec.bos_token_id);
  const std::vector<int32_t> ids = model_.tokenizer->encode(prompt, SpecialText::Parse);
  request.prompt.insert(request.prompt.end(), ids.begin(), ids.end());
  check_request(*model_.backbone, resolved, request);
  return request;
}

GenerationRequest Engine::make_request(std::vector<int32_t> prompt_ids, const SamplingConfig& resolved,
                                       uint64_t seed) const {
  const int64_t vocab = model_.backbone->vocab_size();
  for (size_t i = 0; i < prompt_ids.size(); ++i) {
    if (prompt_ids[i] < 0 || prompt_ids[i] >= vocab)
      fail_input("prompt_ids[{}]: token id {} is outside the model's vocabulary of {}", i, prompt_ids[i],
                 vocab);
  }
  GenerationRequest request{std::move(prompt_ids), seed};
  check_request(*model_.backbone, resolved, request);
  return request;
}

void Engine::generate(std::span<const GenerationRequest> requests, const SamplingConfig& resolved,
                      int64_t max_rows, const ResultSink& sink, const StepObserver& observer) {
  Sampler(*model_.backbone, *backend_, context_, resolved).generate(requests, max_rows, sink, observer);
}

std::vector<GenerationResult> Engine::generate(std::span<const GenerationRequest> requests,
                                               const SamplingConfig& resolved, int64_t max_rows) {
  return Sampler(*model_.backbone, *backend_, context_, resolved).generate(requests, max_rows);
}

std::string Engine::decode_generation(const std::vector<int32_t>& tokens,
                                      const std::vector<std::string>& stop_strings) const {
  const std::vector<int32_t>& stops = model_.spec.stop_token_ids;
  const auto end = std::find_first_of(tokens.begin(), tokens.end(), stops.begin(), stops.end());
  // A model's embedding is often larger than its tokenizer, and a tokenizer.json may leave gaps in its ids:
  // an id without a token has no text and shows as U+FFFD (token_ids keep it).
  const Tokenizer& tokenizer = *model_.tokenizer;
  std::string text;
  for (auto run = tokens.begin(); run != end;) {
    const auto known_end = std::find_if(run, end, [&](int32_t id) { return !tokenizer.has_id(id); });
    text += tokenizer.decode(std::vector<int32_t>(run, known_end));
    if (known_end == end) break;
    text += "\uFFFD";
    run = known_end + 1;
  }
  for (const std::string& stop : stop_strings) {
    const size_t at = text.find(stop);
    if (at != std::string::npos) text.resize(at);
  }
  return text;
}

}  // namespace dlm
