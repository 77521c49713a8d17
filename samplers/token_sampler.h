#pragma once
// Token samplers over logit rows: greedy (temperature 0) or Gumbel-max in float64 (temperature > 0), each row
// drawing from its own request's counter-based stream, so a row's token never depends on the other rows.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/core/rng.h"

namespace dlm {

// Draws are addressed by (step, index) in a request's stream; the purpose sits in the top byte of the step
// counter, so different kinds of draw never share an address.
enum class DrawPurpose : uint8_t { Gumbel = 1, RandomConfidence = 2 };
inline uint64_t draw_step(DrawPurpose purpose, uint64_t step) {
  return (static_cast<uint64_t>(purpose) << 56) | step;
}

// Where a logit row draws its randomness: its request's stream and its position in that request's sequence.
struct RowStream {
  RngStream rng;
  int64_t position = 0;
};

struct SampledTokens {
  std::vector<int32_t> tokens;       // [N]
  std::vector<float> probabilities;  // [N] softmax(logits)[token]; filled only when asked for
};

enum class WantProbabilities : uint8_t { No, Yes };

// logits f32 [N, V] on the backend; rows[i] addresses row i's draws at `step`. Temperature 0 takes the first
// maximum (as torch.argmax). Temperature T > 0 takes argmax over v of exp(l_v) / (-log u_v)^T computed in
// float64 with u_v uniform in (0, 1) drawn at (step, position * V + v): LLaDA's add_gumbel_noise, exactly.
void sample_tokens(Backend& backend, const Tensor& logits, double temperature,
                   std::span<const RowStream> rows, uint64_t step, WantProbabilities want,
                   SampledTokens& out);

}  // namespace dlm
