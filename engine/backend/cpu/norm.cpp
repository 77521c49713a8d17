#include <cmath>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

namespace {

// The sum of term(i) over [0, n), in double over independent lanes, so the loop vectorizes without
// reassociating a single chain.
template <class Term>
double lane_sum(int64_t n, Term term) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += term(i + j);
  }
  for (; i < n; ++i) lanes[0] += term(i);
  double total = 0.0;
  for (double lane : lanes) total += lane;
  return total;
}

}  // namespace

void CpuBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                          const Tensor& out) {
  const int64_t width = weight.numel();
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  cpu::F32Values w(weight);
  // OnePlus folds the 1 into a per-call copy of the scale so both modes share one inner loop.
  std::vector<float> one_plus;
  const float* scale = w.data();
  if (mode == NormWeight::OnePlus) {
    one_plus.resize(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) one_plus[i] = 1.0f + scale[i];
    scale = one_plus.data();
  }
  const auto* xs = static_cast<const float*>(x.data());
  auto* ys = static_cast<float*>(out.data());
  cpu::parallel_rows(pool(), rows, width, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = xs + r * width;
      float* result = ys + r * width;
      const double sum_of_squares = lane_sum(width, [in](int64_t i) {
        const double v = in[i];
        return v * v;
      });
      const auto inv_rms =
          static_cast<float>(1.0 / std::sqrt(sum_of_squares / static_cast<double>(width) + eps));
      for (int64_t i = 0; i < width; ++i) result[i] = in[i] * inv_rms * scale[i];
    }
  });
}

void CpuBackend::layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                            float eps, const Tensor& out) {
  const int64_t width = weight.numel();
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  cpu::F32Values w(weight);
  std::optional<cpu::F32Values> b;
  if (bias) b.emplace(*bias);
  const auto* xs = static_cast<const float*>(x.data());
  auto* ys = static_cast<float*>(out.data());
  cpu::parallel_rows(pool(), rows, width, [&](int64_t begin, int64_t end) {
    const float* scale = w.data();
    const float* shift = b ? b->data() : nullptr;
    for (int64_t r = begin; r < end; ++r) {
      const float* in = xs + r * width;
      float* result = ys + r * width;
      const double mean = lane_sum(width, [in](int64_t i) { return static_cast<double>(in[i]); }) /
                          static_cast<double>(width);
      const double variance = lane_sum(width,
                                       [in, mean](int64_t i) {
                                         const double d = in[i] - mean;
                                         return d * d;
                                       }) /
                              static_cast<double>(width);
      const double inv_std = 1.0 / std::sqrt(variance + eps);
      // Centred in double: a row far from 0 would lose its spread to a mean rounded to f32.
      for (int64_t i = 0; i < width; ++i) result[i] = static_cast<float>((in[i] - mean) * inv_std) * scale[i];
      if (shift != nullptr) {
        for (int64_t i = 0; i < width; ++i) result[i] += shift[i];
      }
    }
  });
}

}  // namespace dlm
