// add, silu, gelu, swiglu, geglu (kernels; the ops are in elementwise.cpp). Activations are evaluated in
// double and rounded once, with the CPU reference's formulas (inf/NaN therefore behave alike: silu(-inf) and
// gelu(-inf) are NaN, large negative inputs give -0). Every element is read and written by one thread, so an
// output may be one of the inputs.
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm::cuda {
namespace {

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = __fadd_rn(a[i], b[i]);
}

// b is one row of `width`, added to each of the `rows` rows of a: one block per row.
__global__ void add_row_kernel(const float* a, const float* b, int64_t rows, int64_t width, float* out) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* in = a + row * width;
    float* result = out + row * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) result[c] = __fadd_rn(in[c], b[c]);
  }
}

template <Activation A>
__device__ __forceinline__ float activate(float x) {
  const double v = x;
  if (A == Activation::Silu) return static_cast<float>(v / (1.0 + exp(-v)));
  if (A == Activation::GeluTanh) {
    // v * sigmoid(2u), u = sqrt(2/pi) (v + 0.044715 v^3), each operation rounded as the CPU rounds it.
    constexpr double kSqrt2OverPi = 0.7978845608028654;
    const double cube_term = __dmul_rn(__dmul_rn(__dmul_rn(0.044715, v), v), v);
    const double u = __dmul_rn(kSqrt2OverPi, __dadd_rn(v, cube_term));
    return static_cast<float>(v / (1.0 + exp(__dmul_rn(-2.0, u))));
  }
  // 0.5 v erfc(-v / sqrt 2).
  constexpr double kInvSqrt2 = 0.7071067811865476;
  return static_cast<float>(__dmul_rn(__dmul_rn(0.5, v), erfc(__dmul_rn(-v, kInvSqrt2))));
}

template <Activation A, bool kGated>
__global__ void activation_kernel(const float* x, const float* up, int64_t n, float* out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const float value = activate<A>(x[i]);
    out[i] = kGated ? __fmul_rn(value, up[i]) : value;
  }
}

template <Activation A>
cudaError_t launch(cudaStream_t stream, const float* x, const float* up, int64_t n, float* out) {
  if (up != nullptr) {
    activation_kernel<A, true><<<element_blocks(n), kElementThreads, 0, stream>>>(x, up, n, out);
  } else {
    activation_kernel<A, false><<<element_blocks(n), kElementThreads, 0, stream>>>(x, nullptr, n, out);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_add(cudaStream_t stream, const float* a, const float* b, int64_t n, int64_t b_count,
                       float* out) {
  if (n == 0) return cudaSuccess;
  if (b_count == n) {
    add_kernel<<<element_blocks(n), kElementThreads, 0, stream>>>(a, b, n, out);
  } else {
    if (b_count <= 0 || n % b_count != 0) return cudaErrorInvalidValue;
    const int64_t rows = n / b_count;
    add_row_kernel<<<row_blocks(rows), row_threads(b_count), 0, stream>>>(a, b, rows, b_count, out);
  }
  return cudaGetLastError();
}

cudaError_t launch_activation(cudaStream_t stream, Activation activation, const float* x, const float* up,
                              int64_t n, float* out) {
  if (n == 0) return cudaSuccess;
  switch (activation) {
    case Activation::Silu:
      return launch<Activation::Silu>(stream, x, up, n, out);
    case Activation::GeluExact:
      return launch<Activation::GeluExact>(stream, x, up, n, out);
    case Activation::GeluTanh:
      return launch<Activation::GeluTanh>(stream, x, up, n, out);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dlm::cuda
