#include "samplers/prediction.h"

#include <algorithm>
#include <limits>

#include "samplers/token_rules.h"

namespace dlm {

TokenRule scaled_rule(double temperature, const RngStream& rng, uint64_t step, int64_t position) {
  TokenRule rule;
  rule.seed = rng.seed;
  rule.position = static_cast<uint64_t>(position);
  if (temperature > 0.0) {
    rule.temperature = temperature;
    rule.divide_by_temperature = true;
    rule.draw = TokenDraw::Categorical;
    rule.counter = draw_step(DrawPurpose::Categorical, step);
  }
  return rule;
}

void set_filters(TokenRule& rule, const SamplingConfig& config, FilterOrder order) {
  // k >= V leaves the row as it is, so a larger k is the largest the rule holds.
  rule.top_k = static_cast<int32_t>(std::min<int64_t>(config.top_k, std::numeric_limits<int32_t>::max()));
  rule.top_p = config.top_p;
  rule.filter_order = order;
}

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
                                        static_cast<uint64_t>(position) * row.size(), context_.mask_id)
                        : argmax(row, context_.mask_id);
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
    out.token = sampled
                    ? sample_categorical(probabilities_,
                                         rng.uniform_double_open(draw_step(DrawPurpose::Categorical, step),
                                                                 static_cast<uint64_t>(position)),
                                         context_.mask_id)
                    : argmax(row, context_.mask_id);
  }
  out.score.entropy = entropy(probabilities_);
  out.score.confidence = confidence_by_policy(
      rng, step, position, [&] { return confidence(probabilities_, out.token, config_.remasking); });
  return out;
}

Prediction Predictor::predict(const StepRows& rows, int64_t i, const RngStream& rng, uint64_t step,
                              int64_t position) {
  if (rows.predicted) return from_device(rows.predictions[static_cast<size_t>(i)], rng, step, position);
  const std::span<const float> row = rows.logits.row(i);
  row_.assign(row.begin(), row.end());
  return predict(row_, rng, step, position);
}

template <class Ranked>
double Predictor::confidence_by_policy(const RngStream& rng, uint64_t step, int64_t position,
                                       Ranked ranked) const {
  switch (config_.remasking) {
    case Remasking::Random:
      return rng.uniform_float(draw_step(DrawPurpose::RandomConfidence, step),
                               static_cast<uint64_t>(position));
    case Remasking::Origin:  // reveals by coin flips, never by rank
      return 0.0;
    default:
      return ranked();
  }
}

std::optional<TokenRule> Predictor::rule(const RngStream& rng, uint64_t step, int64_t position) const {
  // Only entropy remasking and the entropy-bound commit read a prediction's entropies.
  const bool entropies =
      config_.remasking == Remasking::Entropy || config_.commit == CommitRule::EntropyBound;
  if (method_ != Method::Llada) {
    TokenRule rule = scaled_rule(config_.temperature, rng, step, position);
    rule.never_drawn = context_.mask_id;
    rule.entropies = entropies;
    set_filters(rule, config_, method_ == Method::Dream ? FilterOrder::TopPFirst : FilterOrder::TopKFirst);
    return rule;
  }
  TokenRule rule;
  rule.entropies = entropies;
  set_filters(rule, config_, FilterOrder::TopKFirst);
  rule.seed = rng.seed;
  rule.position = static_cast<uint64_t>(position);
  rule.never_drawn = context_.mask_id;
  const bool sampled = config_.temperature > 0.0;
  if (sampled) rule.temperature = config_.temperature;
  const int32_t eos = context_.stop_ids.empty() ? -1 : context_.stop_ids.front();
  if (config_.suppress_eos && eos >= 0) rule.suppress_before_draw = eos;
  if (sampled) {
    rule.draw = TokenDraw::Gumbel;
    rule.counter = draw_step(DrawPurpose::Gumbel, step);
  }
  if (config_.suppress_eos_confidence) {
    std::vector<int32_t> ranked_last(context_.stop_ids.begin() + (context_.stop_ids.empty() ? 0 : 1),
                                     context_.stop_ids.end());
    if (!sampled && eos >= 0) ranked_last.push_back(eos);
    if (ranked_last.size() > static_cast<size_t>(kMaxScoreSuppressions)) return std::nullopt;
    std::copy(ranked_last.begin(), ranked_last.end(), rule.suppress_before_scores);
  }
  return rule;
}

Prediction Predictor::from_device(const TokenPrediction& result, const RngStream& rng, uint64_t step,
                                  int64_t position) const {
  Prediction out;
  out.token = result.token;
  out.score.entropy = result.entropy;
  out.score.confidence = confidence_by_policy(rng, step, position, [&] {
    switch (config_.remasking) {
      case Remasking::Margin:
        return result.margin;
      case Remasking::Entropy:
        return result.neg_entropy;
      default:
        return result.probability;
    }
  });
  return out;
}

}  // namespace dlm
