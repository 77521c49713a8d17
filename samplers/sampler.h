#pragma once
// The entry point of decoding: resolves the settings for a model (the method, the block size), checks each
// request, and runs requests through the Decoder with the method's task. Results come back per request,
// each as soon as it finishes, or all together in request order.
#include <cstdint>
#include <span>
#include <vector>

#include "backbones/backbone.h"
#include "engine/backend/backend.h"
#include "engine/io/generation_config.h"
#include "samplers/decode_context.h"
#include "samplers/decoder.h"

namespace dlm {

// What the model brings to the resolution of a SamplingConfig.
struct ModelDefaults {
  Method method = Method::Llada;  // its own decoding (Method::Auto resolves to it)
  int64_t block_size = 0;         // block diffusion's block; 0: none
};

// The config with Method::Auto and block_length 0 replaced by what they mean for this model; InputError
// (naming the key) when the method needs what the model or context lacks.
SamplingConfig resolve_sampling(const SamplingConfig& config, const ModelDefaults& model,
                                const DecodeContext& context, int64_t vocab_size);

// The attention rule a method decodes with.
Visibility method_visibility(const SamplingConfig& resolved);

// InputError when the prompt is empty or the request does not fit the model's context under `resolved`.
void check_request(const Backbone& backbone, const SamplingConfig& resolved,
                   const GenerationRequest& request);

class Sampler {
 public:
  // `config` as resolve_sampling returns it.
  Sampler(Backbone& backbone, Backend& backend, const DecodeContext& context, const SamplingConfig& config);

  const SamplingConfig& config() const { return config_; }
  // Decodes the requests with up to max_rows at a time; `sink` gets each result as it finishes.
  void generate(std::span<const GenerationRequest> requests, int64_t max_rows, const ResultSink& sink,
                const StepObserver& observer = {});
  // The same, results in request order.
  std::vector<GenerationResult> generate(std::span<const GenerationRequest> requests, int64_t max_rows);

 private:
  std::unique_ptr<DecodeTask> make_task(const GenerationRequest& request);

  Backbone& backbone_;
  Backend& backend_;
  DecodeContext context_;
  SamplingConfig config_;
};

}  // namespace dlm
