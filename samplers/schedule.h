#pragma once
// How many masked positions each step of a diffusion schedule commits.
#include <cstdint>
#include <vector>

namespace dlm {

// LLaDA's get_num_transfer_tokens: `masked` positions spread evenly over `steps`, the remainder going one
// each to the first steps (10 over 4 steps gives 3, 3, 2, 2).
std::vector<int64_t> num_transfer_tokens(int64_t masked, int64_t steps);

// Dream's timesteps: torch.linspace(1, eps, steps + 1) in float32 as its CUDA kernel computes it, value for
// value: the first half from the start, the second from the end, each one fused multiply-add. (torch's CPU
// kernel rounds differently in its vectorized chunks; a commit count can differ only where
// m * (1 - t[i+1] / t[i]) lies within float32 rounding of an integer.)
std::vector<float> dream_timesteps(int64_t steps, double eps);

// Dream's count at step i of `timesteps.size() - 1`: int(masked * (1 - t[i+1] / t[i])) in float32, every
// masked position at the last step.
int64_t dream_transfer_count(int64_t masked, const std::vector<float>& timesteps, int64_t step);

// Dream's origin: the probability 1 - t[i+1] / t[i] (float32) that a masked position is revealed at step i,
// 1 at the last step.
float dream_reveal_probability(const std::vector<float>& timesteps, int64_t step);

}  // namespace dlm
