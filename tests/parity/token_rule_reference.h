#pragma once
// A TokenRule applied on the host, step by step as engine/ops/token_rule.h specifies it, from the samplers'
// row functions (samplers/token_rules.h): the reference the rule-applying test backend and the CUDA kernel's
// tests compare against.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/rng.h"
#include "engine/ops/token_rule.h"
#include "samplers/token_rules.h"

namespace dlm {

inline constexpr uint64_t kStepBits = (uint64_t{1} << 56) - 1;  // draw_step's step, below the purpose byte

// Row `row` of logits [rows, vocab] under `rule`, by the samplers' host functions, as token_rule.h specifies.
inline TokenPrediction reference_prediction(const float* logits, int64_t vocab, const TokenRule& rule,
                                            int64_t row, std::span<const int32_t> penalized_ids) {
  const auto v_count = static_cast<size_t>(vocab);
  std::vector<float> l(logits + row * vocab, logits + (row + 1) * vocab);
  apply_repetition_penalty(l,
                           penalized_ids.subspan(static_cast<size_t>(rule.penalized_begin),
                                                 static_cast<size_t>(rule.penalized_count)),
                           rule.repetition_penalty);
  if (rule.guidance_row >= 0) {
    const float* guide = logits + rule.guidance_row * vocab;
    for (size_t v = 0; v < v_count; ++v) l[v] = guide[v] + rule.guidance_scale * (l[v] - guide[v]);
  }
  if (rule.divide_by_temperature) apply_temperature(l, rule.temperature);
  if (rule.suppress_before_draw >= 0) suppress(l, rule.suppress_before_draw);
  if (rule.filter_order == FilterOrder::TopPFirst) {
    filter_top_p(l, rule.top_p);
    filter_top_k(l, rule.top_k);
  } else {
    filter_top_k(l, rule.top_k);
    filter_top_p(l, rule.top_p);
  }
  filter_min_p(l, rule.min_p);
  const RngStream rng{rule.seed};
  std::vector<double> probabilities;
  TokenPrediction out;
  switch (rule.draw) {
    case TokenDraw::Argmax:
      out.token = argmax(l, rule.never_drawn);
      break;
    case TokenDraw::Gumbel:
      out.token = gumbel_argmax(l, rule.temperature, rng, rule.counter & kStepBits, rule.position * v_count,
                                rule.never_drawn);
      break;
    case TokenDraw::Categorical:
      softmax(l, probabilities);
      out.token = sample_categorical(probabilities, rng.uniform_double_open(rule.counter, rule.position),
                                     rule.never_drawn);
      break;
  }
  for (int32_t id : rule.suppress_before_scores) {
    if (id >= 0) suppress(l, id);
  }
  softmax(l, probabilities);
  out.probability = confidence(probabilities, out.token, Remasking::LowConfidence);
  out.margin = confidence(probabilities, out.token, Remasking::Margin);
  out.neg_entropy = confidence(probabilities, out.token, Remasking::Entropy);
  out.entropy = entropy(probabilities);
  return out;
}

}  // namespace dlm
