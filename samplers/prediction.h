#pragma once
// One masked position's prediction in a diffusion step: the token rule of its method applied to its logit
// row (samplers/README.md): filters, the token (argmax, Gumbel-max or a categorical draw from the request's
// stream) and its scores. On the host from the row itself, or on a device backend from a TokenRule
// (engine/ops/token_rule.h), whose kernel this host code is the reference for.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/core/rng.h"
#include "engine/io/generation_config.h"
#include "engine/ops/token_rule.h"
#include "samplers/decode_context.h"
#include "samplers/decode_task.h"
#include "samplers/selection.h"

namespace dlm {

// The device rule for a row whose token is drawn from softmax(l / temperature), its scores from that
// distribution too (Dream, block diffusion, autoregressive), or the argmax of l at temperature 0.
TokenRule scaled_rule(double temperature, const RngStream& rng, uint64_t step, int64_t position);
// The rule's top-k and top-p filters from the settings (the order is the method's).
void set_filters(TokenRule& rule, const SamplingConfig& config, FilterOrder order);

struct Prediction {
  int32_t token = 0;
  CandidateScore score;
};

class Predictor {
 public:
  Predictor(const SamplingConfig& config, const DecodeContext& context, Method method);

  // `row` is consumed (filtered in place). Draws are addressed by the request's step and the position.
  Prediction predict(std::span<float> row, const RngStream& rng, uint64_t step, int64_t position);

  // Row i of a step's rows: the device's prediction, or predict() on a copy of the host row.
  Prediction predict(const StepRows& rows, int64_t i, const RngStream& rng, uint64_t step, int64_t position);

  // The same prediction as a device rule, or nothing where the rule cannot hold LLaDA's score suppressions.
  std::optional<TokenRule> rule(const RngStream& rng, uint64_t step, int64_t position) const;
  // predict()'s result from the device's answer to rule(rng, step, position).
  Prediction from_device(const TokenPrediction& result, const RngStream& rng, uint64_t step,
                         int64_t position) const;

 private:
  // The confidence the remasking policy ranks by: drawn (Random), 0 (Origin), or `ranked()` for the
  // policies that rank by the prediction's distribution.
  template <class Ranked>
  double confidence_by_policy(const RngStream& rng, uint64_t step, int64_t position, Ranked ranked) const;

  const SamplingConfig& config_;
  const DecodeContext& context_;
  Method method_;
  std::vector<float> row_;
  std::vector<double> probabilities_;
};

}  // namespace dlm
