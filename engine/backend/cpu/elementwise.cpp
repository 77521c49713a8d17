#include <cmath>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

namespace {

// Activations in double, rounded once: as accurate as f32 allows, and inf/NaN behave like torch's f32
// kernels (silu(-inf) and gelu(-inf) are NaN, large negative inputs give -0).
inline float silu_of(float x) {
  const double v = x;
  return static_cast<float>(v / (1.0 + std::exp(-v)));
}

inline float gelu_of(float x, GeluApproximation approximation) {
  const double v = x;
  if (approximation == GeluApproximation::Tanh) {
    // 0.5 v (1 + tanh(u)) written as v * sigmoid(2u), which does not cancel for negative v.
    constexpr double kSqrt2OverPi = 0.7978845608028654;
    const double u = kSqrt2OverPi * (v + 0.044715 * v * v * v);
    return static_cast<float>(v / (1.0 + std::exp(-2.0 * u)));
  }
  // 0.5 v (1 + erf(v / sqrt 2)) written with erfc, which does not cancel for negative v.
  constexpr double kInvSqrt2 = 0.7071067811865476;
  return static_cast<float>(0.5 * v * std::erfc(-v * kInvSqrt2));
}

// out[i] = f(x[i]) over a flat range, in parallel.
template <class F>
void map_unary(ThreadPool& pool, const Tensor& x, const Tensor& out, F f) {
  const auto* xs = static_cast<const float*>(x.data());
  auto* ys = static_cast<float*>(out.data());
  cpu::parallel_rows(pool, x.numel(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) ys[i] = f(xs[i]);
  });
}

// out[r, c] = f(gate[r, c]) * up[r, c] over rows of the last axis; gate and up may be column blocks of one
// matrix (their own row strides), out is contiguous.
template <class F>
void map_gated(ThreadPool& pool, const Tensor& gate, const Tensor& up, const Tensor& out, F f) {
  const auto* gs = static_cast<const float*>(gate.data());
  const auto* us = static_cast<const float*>(up.data());
  auto* ys = static_cast<float*>(out.data());
  const int64_t width = gate.rank() == 0 ? 1 : gate.dim(-1);
  if (width == 0) return;
  const int64_t gate_stride = gate.row_stride();
  const int64_t up_stride = up.row_stride();
  cpu::parallel_rows(pool, gate.numel() / width, width, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* g = gs + r * gate_stride;
      const float* u = us + r * up_stride;
      float* y = ys + r * width;
      for (int64_t c = 0; c < width; ++c) y[c] = f(g[c]) * u[c];
    }
  });
}

}  // namespace

void CpuBackend::add(const Tensor& a, const Tensor& b, const Tensor& out) {
  const auto* as = static_cast<const float*>(a.data());
  const auto* bs = static_cast<const float*>(b.data());
  auto* ys = static_cast<float*>(out.data());
  if (a.numel() == b.numel()) {
    cpu::parallel_rows(pool(), a.numel(), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) ys[i] = as[i] + bs[i];
    });
    return;
  }
  // b is one row, added to every row of a.
  const int64_t width = b.numel();
  cpu::parallel_rows(pool(), a.numel() / width, width, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = as + r * width;
      float* result = ys + r * width;
      for (int64_t i = 0; i < width; ++i) result[i] = row[i] + bs[i];
    }
  });
}

void CpuBackend::silu(const Tensor& x, const Tensor& out) {
  map_unary(pool(), x, out, silu_of);
}

void CpuBackend::gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  map_unary(pool(), x, out, [approximation](float v) { return gelu_of(v, approximation); });
}

void CpuBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  map_gated(pool(), gate, up, out, silu_of);
}

void CpuBackend::geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
                       const Tensor& out) {
  map_gated(pool(), gate, up, out, [approximation](float v) { return gelu_of(v, approximation); });
}

}  // namespace dlm
