#pragma once
// One masked position's prediction in a diffusion step: the token rule of its method applied to its logit
// row (samplers/README.md): filters, the token (argmax, Gumbel-max or a categorical draw from the request's
// stream) and its scores.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/rng.h"
#include "engine/io/generation_config.h"
#include "samplers/decode_context.h"
#include "samplers/selection.h"

namespace dlm {

struct Prediction {
  int32_t token = 0;
  CandidateScore score;
};

class Predictor {
 public:
  Predictor(const SamplingConfig& config, const DecodeContext& context, Method method);

  // `row` is consumed (filtered in place). Draws are addressed by the request's step and the position.
  Prediction predict(std::span<float> row, const RngStream& rng, uint64_t step, int64_t position);

 private:
  const SamplingConfig& config_;
  const DecodeContext& context_;
  Method method_;
  std::vector<double> probabilities_;
};

}  // namespace dlm
