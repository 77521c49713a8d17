#include <cmath>
#include <limits>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

namespace {

// The largest element, NaN ignored: a NaN still poisons the sum of exponentials, so the row becomes NaN as
// in torch. A row holding +inf or only -inf gets max - max = NaN, also as in torch.
float row_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

template <class RowOp>
void for_each_row(ThreadPool& pool, const Tensor& x, const Tensor& out, RowOp row_op) {
  const int64_t width = x.dim(-1);
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  const auto* xs = static_cast<const float*>(x.data());
  auto* ys = static_cast<float*>(out.data());
  cpu::parallel_rows(pool, rows, width, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row_op(xs + r * width, ys + r * width, width);
  });
}

}  // namespace

void CpuBackend::softmax(const Tensor& x, const Tensor& out) {
  for_each_row(pool(), x, out, [](const float* in, float* result, int64_t n) {
    const float m = row_max(in, n);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      result[i] = std::exp(in[i] - m);
      total += result[i];
    }
    const auto inv_total = static_cast<float>(1.0 / total);
    for (int64_t i = 0; i < n; ++i) result[i] *= inv_total;
  });
}

void CpuBackend::log_softmax(const Tensor& x, const Tensor& out) {
  for_each_row(pool(), x, out, [](const float* in, float* result, int64_t n) {
    const float m = row_max(in, n);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += std::exp(in[i] - m);
    const auto log_total = static_cast<float>(std::log(total));
    for (int64_t i = 0; i < n; ++i) result[i] = (in[i] - m) - log_total;
  });
}

}  // namespace dlm
