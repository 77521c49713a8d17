#include "samplers/prediction.h"

#include "samplers/token_rules.h"

namespace dlm {

Predictor::Predictor(const SamplingConfig& config, const DecodeContext& context, Method method)
    : config_(config), context_(context), method_(method) {}

Prediction Predictor::predict(std::span<float> row, const RngStream& rng, uint64_t step, int64_t position) {
  const bool sampled = config_.temperature > 0.0;
  const bool llada = method_ == Method::Llada;
  const int32_t eos = context_.stop_ids.empty() ? -1 : context_.stop_ids.front();
  if (llada && config_.suppress_eos && eos >= 0) suppress(row, eos);

  Prediction out;
  if (llada) {
    // LLaDA draws from the raw logits with float64 Gumbel noise and scores with softmax of the raw logits.
    filter_top_k(row, config_.top_k);
    filter_top_p(row, config_.top_p);
    out.token = sampled ? gumbel_argmax(row, config_.temperature, rng, step,
                                        static_cast<uint64_t>(position) * row.size())
                        : argmax(row);
    if (config_.suppress_eos_confidence) {
      // confidence_eos_eot_inf writes -inf into EoT's logit and into EOS's noisy logit, which at temperature
      // 0 is the logit itself.
      for (size_t i = 1; i < context_.stop_ids.size(); ++i) suppress(row, context_.stop_ids[i]);
      if (!sampled && eos >= 0) suppress(row, eos);
    }
    softmax(row, probabilities_);
  } else {
    // Dream and the block-diffusion samplers: temperature, then filters, then a draw from the result, which
    // also gives the scores. Dream filters top-p first; SDAR and transformers top-k first.
    if (sampled) apply_temperature(row, config_.temperature);
    if (method_ == Method::Dream) {
      filter_top_p(row, config_.top_p);
      filter_top_k(row, config_.top_k);
    } else {
      filter_top_k(row, config_.top_k);
      filter_top_p(row, config_.top_p);
    }
    softmax(row, probabilities_);
    out.token = sampled ? sample_categorical(probabilities_, rng.uniform_double_open(
                                                                 draw_step(DrawPurpose::Categorical, step),
                                                                 static_cast<uint64_t>(position)))
                        : argmax(row);
  }
  out.score.entropy = entropy(probabilities_);
  switch (config_.remasking) {
    case Remasking::Random:
      out.score.confidence =
          rng.uniform_float(draw_step(DrawPurpose::RandomConfidence, step), static_cast<uint64_t>(position));
      break;
    case Remasking::Origin:  // reveals by coin flips, never by rank
      out.score.confidence = 0.0;
      break;
    default:
      out.score.confidence = confidence(probabilities_, out.token, config_.remasking);
  }
  return out;
}

}  // namespace dlm
