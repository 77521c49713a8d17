// add, silu, gelu, swiglu, geglu (kernels; the ops are in elementwise.cpp). Activations are evaluated in
// double and rounded once, with the CPU reference's formulas (inf/NaN therefore behave alike: silu(-inf) and
// gelu(-inf) are NaN, large negative inputs give -0). Every element is read and written by one thread, so an
// output may be one of the inputs. Operands are f32 or bf16 (widened on load, each result rounded once).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm::cuda {
namespace {

template <DType A>
using Element = typename Storage<A>::T;

template <DType A>
__global__ void add_kernel(const Element<A>* a, const Element<A>* b, int64_t n, Element<A>* out) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    Storage<A>::store(out, i, __fadd_rn(Storage<A>::load(a, i), Storage<A>::load(b, i)));
  }
}

// b is one row of `width`, added to each of the `rows` rows of a: one block per row.
template <DType A>
__global__ void add_row_kernel(const Element<A>* a, const Element<A>* b, int64_t rows, int64_t width,
                               Element<A>* out) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const Element<A>* in = a + row * width;
    Element<A>* result = out + row * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
      Storage<A>::store(result, c, __fadd_rn(Storage<A>::load(in, c), Storage<A>::load(b, c)));
    }
  }
}

template <DType A>
cudaError_t launch_add_of(cudaStream_t stream, const void* a_data, const void* b_data, int64_t n,
                          int64_t b_count, void* out_data) {
  const auto* a = static_cast<const Element<A>*>(a_data);
  const auto* b = static_cast<const Element<A>*>(b_data);
  auto* out = static_cast<Element<A>*>(out_data);
  if (b_count == n) {
    add_kernel<A><<<element_blocks(n), kElementThreads, 0, stream>>>(a, b, n, out);
  } else {
    if (b_count <= 0 || n % b_count != 0) return cudaErrorInvalidValue;
    const int64_t rows = n / b_count;
    add_row_kernel<A><<<row_blocks(rows), row_threads(b_count), 0, stream>>>(a, b, rows, b_count, out);
  }
  return cudaGetLastError();
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

// Where the inputs' rows are wider than out's (column blocks of one matrix), element i of out reads its
// row's offset in each input; otherwise every operand is indexed flat.
struct Rows {
  int64_t width, x_stride, up_stride;
};

template <Activation F, bool kGated, DType A>
__global__ void activation_kernel(const Element<A>* x, const Element<A>* up, int64_t n, Rows rows,
                                  Element<A>* out) {
  const bool flat = rows.x_stride == rows.width && rows.up_stride == rows.width;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t xi = i, ui = i;
    if (!flat) {
      const int64_t row = i / rows.width;
      const int64_t column = i - row * rows.width;
      xi = row * rows.x_stride + column;
      ui = row * rows.up_stride + column;
    }
    const float value = activate<F>(Storage<A>::load(x, xi));
    Storage<A>::store(out, i, kGated ? __fmul_rn(value, Storage<A>::load(up, ui)) : value);
  }
}

template <Activation F, DType A>
cudaError_t launch_of(cudaStream_t stream, const void* x_data, const void* up_data, int64_t n, Rows rows,
                      void* out_data) {
  const auto* x = static_cast<const Element<A>*>(x_data);
  const auto* up = static_cast<const Element<A>*>(up_data);
  auto* out = static_cast<Element<A>*>(out_data);
  if (up != nullptr) {
    activation_kernel<F, true, A><<<element_blocks(n), kElementThreads, 0, stream>>>(x, up, n, rows, out);
  } else {
    activation_kernel<F, false, A>
        <<<element_blocks(n), kElementThreads, 0, stream>>>(x, nullptr, n, rows, out);
  }
  return cudaGetLastError();
}

template <Activation F>
cudaError_t launch(cudaStream_t stream, DType dtype, const void* x, const void* up, int64_t n, Rows rows,
                   void* out) {
  switch (dtype) {
    case DType::F32:
      return launch_of<F, DType::F32>(stream, x, up, n, rows, out);
    case DType::BF16:
      return launch_of<F, DType::BF16>(stream, x, up, n, rows, out);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_add(cudaStream_t stream, DType dtype, const void* a, const void* b, int64_t n,
                       int64_t b_count, void* out) {
  if (n == 0) return cudaSuccess;
  switch (dtype) {
    case DType::F32:
      return launch_add_of<DType::F32>(stream, a, b, n, b_count, out);
    case DType::BF16:
      return launch_add_of<DType::BF16>(stream, a, b, n, b_count, out);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launch_activation(cudaStream_t stream, Activation activation, DType dtype, const void* x,
                              const void* up, int64_t n, int64_t width, int64_t x_stride, int64_t up_stride,
                              void* out) {
  if (n == 0) return cudaSuccess;
  if (width <= 0 || x_stride < width || up_stride < width) return cudaErrorInvalidValue;
  const Rows rows{width, x_stride, up_stride};
  switch (activation) {
    case Activation::Silu:
      return launch<Activation::Silu>(stream, dtype, x, up, n, rows, out);
    case Activation::GeluExact:
      return launch<Activation::GeluExact>(stream, dtype, x, up, n, rows, out);
    case Activation::GeluTanh:
      return launch<Activation::GeluTanh>(stream, dtype, x, up, n, rows, out);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dlm::cuda
