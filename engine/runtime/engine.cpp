#include "engine/runtime/engine.h"

#include <algorithm>

#include "samplers/llada.h"

namespace dlm {

Engine::Engine(const std::string& model_dir, const EngineOptions& options)
    : model_dir_(model_dir),
      backend_(options.threads),
      model_(load_model(backend_, model_dir, ModelLoadOptions{options.overlay_path})) {
  // The engine runs LLaDA's sampler: bidirectional masked diffusion on position-aligned logits. Other
  // families would decode, but wrongly, so they are refused until their samplers exist.
  const ModelSpec& spec = model_.spec;
  if (spec.family->decoding != DecodingKind::MaskedDiffusion || spec.logit_shift != 0) {
    fail_input(
        "{}: this {} model needs {} decoding{}, which dlm generate does not run yet (it runs LLaDA-style "
        "masked diffusion)",
        model_dir, spec.family->title, decoding_name(spec.family->decoding),
        spec.logit_shift != 0 ? " with shifted logits" : "");
  }
  if (!spec.mask_token_id) {
    fail_input(
        "{}: this {} model has no mask token, which the masked-diffusion sampler needs; give one with "
        "mask_token in a model overlay",
        model_dir, spec.family->title);
  }
  mask_id_ = *spec.mask_token_id;
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
