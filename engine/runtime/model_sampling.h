#pragma once
// What a model brings to the sampling settings: its own decoding method and block size, and its overlays'
// sampler sections (the "model metadata" layer between the built-in defaults and a run's settings).
#include <cstdint>

#include "backbones/model_spec.h"
#include "engine/io/generation_config.h"
#include "samplers/decode_context.h"

namespace dlm {

// The decoding context of a model: its mask and stop ids, logit shift and detokenizer (which keeps a pointer
// to `tokenizer`).
DecodeContext model_decode_context(const ModelSpec& spec, const Tokenizer& tokenizer);

// The method a model decodes with when the settings say auto.
Method own_method(const ModelSpec& spec);

// The built-in defaults with the model's overlay sampler sections applied (unresolved).
SamplingConfig model_default_sampling(const ModelSpec& spec);

// The settings resolved for this model: auto and block 0 replaced, then checked. InputError naming the
// model (`model_name`) when it cannot decode with them: a method its family was not trained for, no mask
// token for diffusion, or a setting the resolved method refuses.
SamplingConfig resolve_for_model(const SamplingConfig& sampling, const ModelSpec& spec,
                                 const DecodeContext& context, int64_t vocab_size,
                                 const std::string& model_name);

}  // namespace dlm
