// add, silu, gelu, swiglu, geglu (kernels; the ops are in elementwise.cpp). Activations are evaluated in
// double and rounded once (bf16 SiLU: in f32 wherever that rounds the same, see activation_value), with the
// CPU reference's formulas (inf/NaN therefore behave alike: silu(-inf) and gelu(-inf) are NaN, large
// negative inputs give -0). Every element is read and written by one thread, so an output may be one of the
// inputs. Operands are f32 or bf16 (widened on load, each result rounded once).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

template <DType A>
using Element = typename Storage<A>::T;

template <DType A>
__global__ void add_kernel(const Element<A>* a, const Element<A>* b, int64_t n, Element<A>* out) {
  wait_for_previous_kernel();
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    Storage<A>::store(out, i, __fadd_rn(Storage<A>::load(a, i), Storage<A>::load(b, i)));
  }
}

// b is one row of `width`, added to each of the `rows` rows of a: one block per row.
template <DType A>
__global__ void add_row_kernel(const Element<A>* a, const Element<A>* b, int64_t rows, int64_t width,
                               Element<A>* out) {
  wait_for_previous_kernel();
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
    launch_overlapping(add_kernel<A>, element_blocks(n), kElementThreads, 0, stream, a, b, n, out);
  } else {
    if (b_count <= 0 || n % b_count != 0) return cudaErrorInvalidValue;
    const int64_t rows = n / b_count;
    launch_overlapping(add_row_kernel<A>, row_blocks(rows), row_threads(b_count), 0, stream, a, b, rows,
                       b_count, out);
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

// SiLU into bf16 in f32 arithmetic: exp (2 ulps), 1 + exp and the division leave the f32 result within 6.5
// ulps of the double evaluation's, 14 after the gate's product. Within that distance of every value but a
// bf16 rounding midpoint, bf16 rounding gives the same bits, so the f32 result is kept unless it lies within
// kMidpointMargin ulps of a midpoint or is not a normal number; those few elements take the double
// evaluation. (SiLU only: the other activations' f32 error grows with |x|.)
constexpr uint32_t kMidpointMargin = 64;

__device__ __forceinline__ bool rounds_as_its_neighbours(float r) {
  const uint32_t bits = __float_as_uint(r);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude < 0x00800000u || magnitude >= 0x7f800000u) return false;  // 0, subnormal, inf, NaN
  const uint32_t below_bf16 = bits & 0xffffu;
  const uint32_t from_midpoint = below_bf16 > 0x8000u ? below_bf16 - 0x8000u : 0x8000u - below_bf16;
  return from_midpoint > kMidpointMargin;
}

// activate<F>(x) (times up when gated), rounded as activate's double evaluation would be for A's storage.
template <Activation F, bool kGated, DType A>
__device__ __forceinline__ float activation_value(float x, float up) {
  if constexpr (F == Activation::Silu && A == DType::BF16) {
    float r = __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
    if (kGated) r = __fmul_rn(r, up);
    if (rounds_as_its_neighbours(r)) return r;
  }
  const float value = activate<F>(x);
  return kGated ? __fmul_rn(value, up) : value;
}

// out is [rows, width]; x's and up's rows lie x_stride and up_stride elements apart (wider than out's where
// they are column blocks of one matrix).
struct Rows {
  int64_t rows, width, x_stride, up_stride;
};

// Each thread handles kCount consecutive elements of a row (16 bytes where Rows and the pointers allow); rows
// run along the grid's y, groups of a row along its x, so no index is divided.
template <Activation F, bool kGated, DType A, int kCount>
__global__ void activation_kernel(const Element<A>* x, const Element<A>* up, Rows r, Element<A>* out) {
  wait_for_previous_kernel();
  const int64_t groups = r.width / kCount;
  for (int64_t row = blockIdx.y; row < r.rows; row += gridDim.y) {
    const Element<A>* x_row = x + row * r.x_stride;
    const Element<A>* up_row = kGated ? up + row * r.up_stride : nullptr;
    Element<A>* out_row = out + row * r.width;
    for (int64_t g = global_thread(); g < groups; g += grid_threads()) {
      float value[kCount];
      load_group<A, kCount>(x_row, g * kCount, value);
      float gate[kCount];
      if (kGated) load_group<A, kCount>(up_row, g * kCount, gate);
#pragma unroll
      for (int k = 0; k < kCount; ++k)
        value[k] = activation_value<F, kGated, A>(value[k], kGated ? gate[k] : 0.0f);
      store_group<A, kCount>(out_row, g * kCount, value);
    }
  }
}

template <Activation F, bool kGated, DType A, int kCount>
void launch_rows(cudaStream_t stream, const Element<A>* x, const Element<A>* up, const Rows& r,
                 Element<A>* out) {
  constexpr int64_t kMaxGrid = 65535;
  const int64_t groups = r.width / kCount;
  const int64_t row_blocks = (groups + kElementThreads - 1) / kElementThreads;
  const dim3 grid(static_cast<unsigned int>(row_blocks < kMaxGrid ? row_blocks : kMaxGrid),
                  static_cast<unsigned int>(r.rows < kMaxGrid ? r.rows : kMaxGrid));
  launch_overlapping(activation_kernel<F, kGated, A, kCount>, grid, kElementThreads, 0, stream, x, up, r,
                     out);
}

template <Activation F, bool kGated, DType A>
void launch_gated_or_not(cudaStream_t stream, const Element<A>* x, const Element<A>* up, const Rows& r,
                         Element<A>* out) {
  constexpr int kCount = kGroup<A>;
  const bool grouped = r.width % kCount == 0 && r.x_stride % kCount == 0 && r.up_stride % kCount == 0 &&
                       aligned16(x) && aligned16(out) && (!kGated || aligned16(up));
  if (grouped) {
    launch_rows<F, kGated, A, kCount>(stream, x, up, r, out);
  } else {
    launch_rows<F, kGated, A, 1>(stream, x, up, r, out);
  }
}

template <Activation F, DType A>
cudaError_t launch_of(cudaStream_t stream, const void* x_data, const void* up_data, const Rows& rows,
                      void* out_data) {
  const auto* x = static_cast<const Element<A>*>(x_data);
  const auto* up = static_cast<const Element<A>*>(up_data);
  auto* out = static_cast<Element<A>*>(out_data);
  if (up != nullptr) {
    launch_gated_or_not<F, true, A>(stream, x, up, rows, out);
  } else {
    launch_gated_or_not<F, false, A>(stream, x, nullptr, rows, out);
  }
  return cudaGetLastError();
}

template <Activation F>
cudaError_t launch(cudaStream_t stream, DType dtype, const void* x, const void* up, const Rows& rows,
                   void* out) {
  switch (dtype) {
    case DType::F32:
      return launch_of<F, DType::F32>(stream, x, up, rows, out);
    case DType::BF16:
      return launch_of<F, DType::BF16>(stream, x, up, rows, out);
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
  if (n % width != 0) return cudaErrorInvalidValue;
  const Rows rows{n / width, width, x_stride, up_stride};
  switch (activation) {
    case Activation::Silu:
      return launch<Activation::Silu>(stream, dtype, x, up, rows, out);
    case Activation::GeluExact:
      return launch<Activation::GeluExact>(stream, dtype, x, up, rows, out);
    case Activation::GeluTanh:
      return launch<Activation::GeluTanh>(stream, dtype, x, up, rows, out);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dlm::cuda
