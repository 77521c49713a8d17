#include <cmath>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

void CpuBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                      const RopeParams& params, const Tensor& out) {
  const int64_t tokens = x.dim(0);
  const int64_t heads = x.dim(1);
  const int64_t head_dim = x.dim(2);
  const int64_t half = params.rotary_dim / 2;
  const auto* pos = static_cast<const int32_t*>(positions.data());
  const auto* freq = static_cast<const float*>(inv_freq.data());
  const auto* xs = static_cast<const float*>(x.data());
  const int64_t x_stride = x.stride(0);  // tokens may lie further apart than heads * head_dim
  auto* ys = static_cast<float*>(out.data());
  const double factor = params.attention_factor;
  const bool interleaved = params.layout == RopeLayout::Interleaved;
  cpu::parallel_rows(pool(), tokens, heads * head_dim, [&](int64_t begin, int64_t end) {
    std::vector<float> cos_sin(static_cast<size_t>(2 * half));
    float* cos_t = cos_sin.data();
    float* sin_t = cos_sin.data() + half;
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        // The angle is rounded to f32 exactly as HF computes position * inv_freq; large positions depend on
        // that rounding. cos and sin of that angle are then taken in double.
        const float angle = static_cast<float>(pos[t]) * freq[i];
        cos_t[i] = static_cast<float>(std::cos(static_cast<double>(angle)) * factor);
        sin_t[i] = static_cast<float>(std::sin(static_cast<double>(angle)) * factor);
      }
      for (int64_t h = 0; h < heads; ++h) {
        const float* in = xs + t * x_stride + h * head_dim;
        float* result = ys + (t * heads + h) * head_dim;
        if (interleaved) {
          for (int64_t i = 0; i < half; ++i) {
            const float a = in[2 * i];
            const float b = in[2 * i + 1];
            result[2 * i] = a * cos_t[i] - b * sin_t[i];
            result[2 * i + 1] = b * cos_t[i] + a * sin_t[i];
          }
        } else {
          for (int64_t i = 0; i < half; ++i) {
            const float a = in[i];
            const float b = in[i + half];
            result[i] = a * cos_t[i] - b * sin_t[i];
            result[i + half] = b * cos_t[i] + a * sin_t[i];
          }
        }
        if (result != in) std::copy(in + 2 * half, in + head_dim, result + 2 * half);
      }
    }
  });
}

}  // namespace dlm
