#include "samplers/schedule.h"

#include <cmath>

#include "engine/core/error.h"

namespace dlm {

std::vector<int64_t> num_transfer_tokens(int64_t masked, int64_t steps) {
  DLM_CHECK(masked >= 0 && steps > 0, "transfer schedule of {} masked positions over {} steps", masked,
            steps);
  std::vector<int64_t> counts(static_cast<size_t>(steps), masked / steps);
  for (int64_t i = 0; i < masked % steps; ++i) ++counts[static_cast<size_t>(i)];
  return counts;
}

std::vector<float> dream_timesteps(int64_t steps, double eps) {
  DLM_CHECK(steps > 0, "dream_timesteps: {} steps", steps);
  const int64_t count = steps + 1;
  const float start = 1.0f, end = static_cast<float>(eps);
  const float step = (end - start) / static_cast<float>(count - 1);
  const int64_t halfway = count / 2;
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    // Fused multiply-adds, as nvcc compiles torch's CUDA linspace kernel (Dream decodes on the GPU).
    values[static_cast<size_t>(i)] = i < halfway ? std::fma(step, static_cast<float>(i), start)
                                                 : std::fma(-step, static_cast<float>(count - i - 1), end);
  }
  return values;
}

float dream_reveal_probability(const std::vector<float>& timesteps, int64_t step) {
  const int64_t steps = static_cast<int64_t>(timesteps.size()) - 1;
  DLM_CHECK(step >= 0 && step < steps, "dream step {} of {}", step, steps);
  if (step == steps - 1) return 1.0f;
  return 1.0f - timesteps[static_cast<size_t>(step + 1)] / timesteps[static_cast<size_t>(step)];
}

int64_t dream_transfer_count(int64_t masked, const std::vector<float>& timesteps, int64_t step) {
  const int64_t steps = static_cast<int64_t>(timesteps.size()) - 1;
  if (step == steps - 1) return masked;
  return static_cast<int64_t>(static_cast<float>(masked) * dream_reveal_probability(timesteps, step));
}

}  // namespace dlm
