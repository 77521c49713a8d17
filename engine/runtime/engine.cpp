#include "engine/runtime/engine.h"

#include <algorithm>

#include "samplers/llada.h"

namespace dlm {

Engine::Engine(const std::string& model_dir, const EngineOptions& options)
    : model_dir_(model_dir),
      backend_(options.threads),
      model_(load_model(backend_, model_dir, ModelLoadOptions{options.overlay_path})) {
  if (!model_.spec.mask_token_id) {
    fail_input(
        "{}: this {} model has no mask token, which the masked-diffusion sampler needs; give one with "
        "mask_token in a model overlay",
        model_dir, model_.spec.family->title);
  }
  mask_id_ = *model_.spec.mask_token_id;
}

Engine::~Engine() = default;

GenerationRequest Engine::make_request(std::string_view prompt, const SamplingConfig& sampling,
                                       uint64_t seed) const {
  GenerationRequest request;
  request.seed = seed;
  if (model_.spec.bos_token_id) request.prompt.push_back(*model_.spec.bos_token_id);
  const std::vector<int32_t> ids = model_.tokenizer->encode(prompt, SpecialText::Parse);
  request.prompt.insert(request.prompt.end(), ids.begin(), ids.end());
  LladaSampler::check_fits(*model_.backbone, sampling, request);
  return request;
}

std::vector<GenerationResult> Engine::generate(std::span<const GenerationRequest> requests,
                                               const SamplingConfig& sampling) {
  return LladaSampler(*model_.backbone, backend_, mask_id_, sampling).generate(requests);
}

std::string Engine::decode_generation(const std::vector<int32_t>& tokens) const {
  const std::vector<int32_t>& stops = model_.spec.stop_token_ids;
  const auto end = std::find_first_of(tokens.begin(), tokens.end(), stops.begin(), stops.end());
  return model_.tokenizer->decode(std::vector<int32_t>(tokens.begin(), end));
}

}  // namespace dlm
