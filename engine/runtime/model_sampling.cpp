#include "engine/runtime/model_sampling.h"

#include "engine/core/error.h"
#include "samplers/sampler.h"

namespace dlm {

namespace {

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

DecodeContext model_decode_context(const ModelSpec& spec, const Tokenizer& tokenizer) {
  DecodeContext context;
  context.mask_id = spec.mask_token_id.value_or(-1);
  context.stop_ids = spec.stop_token_ids;
  context.logit_shift = spec.logit_shift;
  const Tokenizer* source = &tokenizer;
  context.detokenize = [source](std::span<const int32_t> tokens) {
    return source->decode(std::vector<int32_t>(tokens.begin(), tokens.end()));
  };
  return context;
}

Method own_method(const ModelSpec& spec) {
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

SamplingConfig model_default_sampling(const ModelSpec& spec) {
  SamplingConfig sampling;
  for (const YamlMap& layer : spec.sampler_layers) read_sampler_keys(layer, sampling);
  return sampling;
}

SamplingConfig resolve_for_model(const SamplingConfig& sampling, const ModelSpec& spec,
                                 const DecodeContext& context, int64_t vocab_size,
                                 const std::string& model_name) {
  const Method own = own_method(spec);
  const Method method = sampling.method == Method::Auto ? own : sampling.method;
  if (method_decoding(method) != spec.family->decoding) {
    fail_input(
        "{}: method {} needs a model trained for {} decoding; this {} model decodes by {} (method {}){}",
        model_name, enum_name(method, kMethodNames), decoding_name(method_decoding(method)),
        spec.family->title, decoding_name(spec.family->decoding), enum_name(own, kMethodNames),
        method == Method::Autoregressive && spec.family->decoding == DecodingKind::BlockDiffusion
            ? "; block_diffusion with block_length 1 decodes it one token at a time"
            : "");
  }
  if (method != Method::Autoregressive && !spec.mask_token_id) {
    fail_input(
        "{}: this {} model has no mask token, which diffusion decoding needs; give one with mask_token "
        "in a model overlay",
        model_name, spec.family->title);
  }
  return resolve_sampling(sampling, ModelDefaults{own, spec.block_size}, context, vocab_size);
}

}  // namespace dlm
