#pragma once
// What a step does with one logit row before it commits anything: suppress or penalize ids, filter the
// vocabulary (top-k, top-p, min-p), choose the token (greedy or drawn from the request's stream) and score
// the prediction (the confidence a remasking policy ranks by, and its entropy). Rows are host float32; sums
// and probabilities are float64, as LLaDA computes its confidences.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/rng.h"
#include "engine/io/generation_config.h"

namespace dlm {

// Draws are addressed by (step, index) in a request's stream; the purpose sits in the top byte of the step
// counter, so different kinds of draw never share an address.
enum class DrawPurpose : uint8_t {
  Gumbel = 1,
  RandomConfidence = 2,
  Categorical = 3,
  Reveal = 4,
  AlgTemp = 5
};
inline uint64_t draw_step(DrawPurpose purpose, uint64_t step) {
  return (static_cast<uint64_t>(purpose) << 56) | step;
}

// l[id] = -inf.
void suppress(std::span<float> row, int32_t id);
// transformers' RepetitionPenaltyLogitsProcessor: every distinct id of `history` gets l * penalty when l < 0,
// l / penalty otherwise.
void apply_repetition_penalty(std::span<float> row, std::span<const int32_t> history, double penalty);
// Every logit below the k-th largest becomes -inf (ties with the k-th stay). k <= 0 or k >= size, or a row
// holding NaN (which has no k-th largest): no change.
void filter_top_k(std::span<float> row, int64_t k);
// Nucleus: sorted descending, a token goes when the probability mass before it already exceeds p; the most
// likely token always stays. p >= 1: no change.
void filter_top_p(std::span<float> row, double p);
// Every token whose probability is below min_p times the largest becomes -inf. min_p <= 0: no change.
void filter_min_p(std::span<float> row, double min_p);
// row / temperature, for temperature > 0.
void apply_temperature(std::span<float> row, double temperature);

// softmax in float64.
void softmax(std::span<const float> row, std::vector<double>& probabilities);
// The draws below never return `never` (when >= 0): a diffusion step passes its mask id, whose prediction
// would leave the position masked and the step without progress.
//
// The first maximum, as torch.argmax (std::max_element over the ids other than `never`).
int32_t argmax(std::span<const float> row, int32_t never = -1);
// LLaDA's add_gumbel_noise then argmax: argmax_v exp(l_v) / (-log u_v)^T in float64, u_v drawn at
// (Gumbel | step, base + v).
int32_t gumbel_argmax(std::span<const float> row, double temperature, const RngStream& rng, uint64_t step,
                      uint64_t base, int32_t never = -1);
// Inverse-CDF draw from `probabilities` with one uniform u in (0, 1); without `never`, the draw is from the
// others renormalized (u scaled by their mass).
int32_t sample_categorical(std::span<const double> probabilities, double u, int32_t never = -1);

// How sure a prediction is, by remasking policy (higher is surer): LowConfidence p[token]; Margin top-1 minus
// top-2 probability; Entropy sum p log(p + 1e-10) (Dream's negative entropy). Random and Origin draw theirs
// elsewhere.
double confidence(std::span<const double> probabilities, int32_t token, Remasking remasking);
// -sum p log p, natural log.
double entropy(std::span<const double> probabilities);

}  // namespace dlm
