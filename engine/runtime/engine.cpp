#include "engine/runtime/engine.h"

#include <algorithm>

namespace dlm {

namespace {

Method family_method(const ModelSpec& spec) {
  switch (spec.family->decoding) {
    case DecodingKind::Autoregressive:
      return Method::Autoregressive;
    case DecodingKind::BlockDiffusion:
      return Method::BlockDiffusion;
    case DecodingKind::MaskedDiffusion:
      break;
  }
  return spec.logit_shift != 0 ? Method::Dream : Method::Llada;
}

// The decoding kind a method needs the model to have been trained for.
DecodingKind method_decoding(Method method) {
  switch (method) {
    case Method::Autoregressive:
      return DecodingKind::Autoregressive;
    case Method::BlockDiffusion:
      return DecodingKind::BlockDiffusion;
    default:
      return DecodingKind::MaskedDiffusion;
  }
}

}  // namespace

Engine::Engine(const std::string& model_dir, const EngineOptions& options)
    : model_dir_(model_dir),
      backend_(options.threads),
      model_(load_model(backend_, model_dir, ModelLoadOptions{options.overlay_path})) {
  const ModelSpec& spec = model_.spec;
  context_.mask_id = spec.mask_token_id.value_or(-1);
  context_.stop_ids = spec.stop_token_ids;
  context_.logit_shift = spec.logit_shift;
  const Tokenizer* tokenizer = model_.tokenizer.get();
  context_.detokenize = [tokenizer](std::span<const int32_t> tokens) {
    return tokenizer->decode(std::vector<int32_t>(tokens.begin(), tokens.end()));
  };
}

Engine::~Engine() = default;

SamplingConfig Engine::default_sampling() const {
  SamplingConfig sampling;
  for (const YamlMap& layer : model_.spec.sampler_layers) read_sampler_keys(layer, sampling);
  return sampling;
}

SamplingConfig Engine::resolve(const SamplingConfig& sampling) const {
  const ModelSpec& spec = model_.spec;
  const Method own = family_method(spec);
  const Method method = sampling.method == Method::Auto ? own : sampling.method;
  if (method_decoding(method) != spec.family->decoding) {
    fail_input(
        "{}: method {} needs a model trained for {} decoding; this {} model decodes by {} (method {}){}",
        model_dir_, enum_name(method, kMethodNames), decoding_name(method_decoding(method)),
        spec.family->title, decoding_name(spec.family->decoding), enum_name(own, kMethodNames),
        method == Method::Autoregressive && spec.family->decoding == DecodingKind::BlockDiffusion
            ? "; block_diffusion with block_length 1 decodes it one token at a time"
            : "");
  }
  if (method != Method::Autoregressive && !spec.mask_token_id) {
    fail_input(
        "{}: this {} model has no mask token, which diffusion decoding needs; give one with mask_token "
        "in a model overlay",
        model_dir_, spec.family->title);
  }
  return resolve_sampling(sampling, ModelDefaults{own, spec.block_size}, context_,
                          model_.backbone->vocab_size());
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
  Sampler(*model_.backbone, backend_, context_, resolved).generate(requests, max_rows, sink, observer);
}

std::vector<GenerationResult> Engine::generate(std::span<const GenerationRequest> requests,
                                               const SamplingConfig& resolved, int64_t max_rows) {
  return Sampler(*model_.backbone, backend_, context_, resolved).generate(requests, max_rows);
}

std::string Engine::decode_generation(const std::vector<int32_t>& tokens,
                                      const std::vector<std::string>& stop_strings) const {
  const std::vector<int32_t>& stops = model_.spec.stop_token_ids;
  const auto end = std::find_first_of(tokens.begin(), tokens.end(), stops.begin(), stops.end());
  // A model's embedding is often larger than its tokenizer; an id past the tokenizer has no text and shows
  // as U+FFFD (token_ids keep it).
  const Tokenizer& tokenizer = *model_.tokenizer;
  std::string text;
  for (auto run = tokens.begin(); run != end;) {
    const auto known_end = std::find_if(run, end, [&](int32_t id) { return id >= tokenizer.vocab_size(); });
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
