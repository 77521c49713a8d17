#pragma once
// A token rule: what a decoding step does with one logit row, as plain data a device kernel applies
// (Backend::predict_tokens), so that only a few bytes per row leave the device instead of the row. The
// samplers' Predictor (samplers/prediction.h) builds the rule from its settings and is the reference the
// kernel must reproduce. C++17 and trivially copyable: the .cu files include it and rules are copied as
// bytes.
#include <cstdint>
#include <type_traits>

namespace dlm {

enum class TokenDraw : uint8_t {
  Argmax,       // the first maximum of the draw row (std::max_element)
  Gumbel,       // LLaDA: argmax_v exp(l_v) / (-log u_v)^temperature in float64, u_v drawn at (counter,
                // position * vocab + v)
  Categorical,  // the inverse-CDF draw from softmax(l) with one u drawn at (counter, position)
};

inline constexpr int kMaxScoreSuppressions = 4;

// The order of the top-k and top-p filters (min-p always comes last): transformers and SDAR take top-k
// first, Dream top-p.
enum class FilterOrder : uint8_t { TopKFirst, TopPFirst };

// Applied to row r of logits [N, V], in this order:
//   l = logits[r]; with repetition_penalty != 1, each penalized id's l becomes f32(l * penalty) when l < 0,
//     f32(l / penalty) otherwise, in float64 (samplers' apply_repetition_penalty)
//   with guidance_row g >= 0, l = logits[g] + guidance_scale * (l - logits[g]) in f32
//   with divide_by_temperature, l = f32(l / temperature) computed in float64
//   (the penalty and the division are applied to logits[r] in place, so neither combines with guidance)
//   l with suppress_before_draw at -inf, then filtered: top_k and top_p in filter_order, then min_p, each
//     on the row the ones before left (samplers' filter_top_k, filter_top_p, filter_min_p); a filtered id is
//     -inf. This is the draw row; the token comes from it, never never_drawn
//   the score row: the draw row with every suppress_before_scores id at -inf; the scores are its softmax's.
// A Categorical draw samples from the score row's softmax, so it takes no score-only suppressions. Unused
// ids are -1. Draws come from the request's Philox stream (engine/core/rng.h), as on the host.
struct TokenRule {
  uint64_t seed = 0;      // the request's RngStream
  uint64_t counter = 0;   // the step word of the draw (samplers' draw_step(purpose, step))
  uint64_t position = 0;  // the canvas position the row predicts: the draw's index
  double temperature = 0.0;
  TokenDraw draw = TokenDraw::Argmax;
  bool divide_by_temperature = false;
  int32_t guidance_row = -1;  // a row of the same logits
  float guidance_scale = 0.0f;
  int32_t suppress_before_draw = -1;
  // An id the draw never returns, the scores keep (diffusion: the mask id, whose prediction would leave the
  // position masked); a Categorical draw then samples the other ids renormalized, u scaled by their mass.
  int32_t never_drawn = -1;
  int32_t suppress_before_scores[kMaxScoreSuppressions] = {-1, -1, -1, -1};
  int32_t top_k = 0;  // 0 or >= V: off
  FilterOrder filter_order = FilterOrder::TopKFirst;
  double top_p = 1.0;  // 1: off
  double min_p = 0.0;  // 0: off
  // Ids [penalized_begin, penalized_begin + penalized_count) of predict_tokens' penalized ids, ascending.
  double repetition_penalty = 1.0;  // 1: off
  int32_t penalized_begin = 0;
  int32_t penalized_count = 0;
  // false: the prediction's entropy and neg_entropy are left 0. Their pass (two logarithms and a division
  // per id, in float64) costs more than the rest of the rule, and few decoding settings read them.
  bool entropies = true;
};

// One row's result: the token and the softmax statistics of its score row (float64, as the host computes
// them: p_v = exp(l_v - max) / sum).
struct TokenPrediction {
  int32_t token = 0;
  double probability = 0.0;  // p[token]
  double margin = 0.0;       // the largest p minus the second largest (equal values count twice)
  double neg_entropy = 0.0;  // sum p log(p + 1e-10): Dream's entropy confidence
  double entropy = 0.0;      // -sum over p > 0 of p log p
};

static_assert(std::is_trivially_copyable_v<TokenRule> && std::is_trivially_copyable_v<TokenPrediction>);

}  // namespace dlm
