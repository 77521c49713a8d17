// linear: products of 1 to 4 bf16 rows (decoding a batch of up to 4 sequences token by token), without
// tensor cores. Such a product reads each weight once and does 2 to 8 FLOP with it, so its time is the
// weight's bytes over the copy rate plus what the kernel costs to start and drain; cuBLASLt's tiled
// kernels pay more of the latter (BENCHMARKS.md). Here each warp takes whole W rows: every lane issues
// several 16-byte loads of its row before using the first, multiplies each group of 8 weights with the same
// 8 elements of every x row, and the warp adds its lanes' sums in a fixed butterfly order, so a call gives
// the same bits every time. The op is in linear.cpp.
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/launch.cuh"
#include "engine/backend/cuda/linear_kernels.h"

namespace dlm::cuda {
namespace {

constexpr int kMatvecThreads = 128;  // 4 warps, a W row each at a time: small blocks balance short N
constexpr int kWarps = kMatvecThreads / 32;
constexpr int kLoadsInFlight = 8;  // 16-byte W loads a lane issues before it multiplies

// The two bf16 values of a 32-bit word, widened (bf16 is f32's upper half).
__device__ __forceinline__ float low_bf16(uint32_t pair) {
  return __uint_as_float(pair << 16);
}
__device__ __forceinline__ float high_bf16(uint32_t pair) {
  return __uint_as_float(pair & 0xffff0000u);
}

// acc[r] += the 8 products of one 16-byte group of W with the same group of x row r.
template <int Rows>
__device__ __forceinline__ void multiply_group(const uint4& w, const uint16_t* x, int64_t k, int64_t group,
                                               float (&acc)[Rows]) {
  const uint32_t wp[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + r * k) + group);
    const uint32_t xp[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      acc[r] = fmaf(low_bf16(wp[p]), low_bf16(xp[p]), acc[r]);
      acc[r] = fmaf(high_bf16(wp[p]), high_bf16(xp[p]), acc[r]);
    }
  }
}

// out[r, j] = sum_k x[r, k] w[j, k] (+ bias[j]), r < Rows; k a multiple of 8, w and x 16-byte aligned.
template <int Rows, DType Bias, DType Out>
__global__ void __launch_bounds__(kMatvecThreads)
    linear_matvec_kernel(const uint16_t* __restrict__ w, const uint16_t* __restrict__ x,
                         const typename Storage<Bias>::T* __restrict__ bias, typename Storage<Out>::T* out,
                         int64_t n, int64_t k) {
  wait_for_previous_kernel();
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t groups = k / 8;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  for (int64_t j = first_row; j < n; j += static_cast<int64_t>(gridDim.x) * kWarps) {
    const uint4* row = reinterpret_cast<const uint4*>(w + j * k);
    float acc[Rows];
#pragma unroll
    for (int r = 0; r < Rows; ++r) acc[r] = 0.0f;
    for (int64_t base = lane; base < groups; base += 32 * kLoadsInFlight) {
      uint4 loaded[kLoadsInFlight];
#pragma unroll
      for (int u = 0; u < kLoadsInFlight; ++u) {
        const int64_t group = base + 32 * u;
        // Streamed past L1: each weight is read once.
        if (group < groups) loaded[u] = __ldcs(row + group);
      }
#pragma unroll
      for (int u = 0; u < kLoadsInFlight; ++u) {
        const int64_t group = base + 32 * u;
        if (group < groups) multiply_group<Rows>(loaded[u], x, k, group, acc);
      }
    }
#pragma unroll
    for (int r = 0; r < Rows; ++r) {
      const float sum = warp_reduce(acc[r], SumOp{});
      if (lane == 0) {
        Storage<Out>::store(out, r * n + j, bias != nullptr ? sum + Storage<Bias>::load(bias, j) : sum);
      }
    }
  }
}

template <int Rows, DType Bias, DType Out>
cudaError_t launch(cudaStream_t stream, const void* w, const void* x, const void* bias, void* out, int64_t n,
                   int64_t k) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 20;
  const int64_t blocks = (n + kWarps - 1) / kWarps;
  launch_overlapping(linear_matvec_kernel<Rows, Bias, Out>,
                     static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks), kMatvecThreads, 0,
                     stream, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(x),
                     static_cast<const typename Storage<Bias>::T*>(bias),
                     static_cast<typename Storage<Out>::T*>(out), n, k);
  return cudaGetLastError();
}

template <int Rows, DType Bias>
cudaError_t launch_out(cudaStream_t stream, const void* w, const void* x, const void* bias, void* out,
                       DType out_dtype, int64_t n, int64_t k) {
  switch (out_dtype) {
    case DType::F32:
      return launch<Rows, Bias, DType::F32>(stream, w, x, bias, out, n, k);
    case DType::BF16:
      return launch<Rows, Bias, DType::BF16>(stream, w, x, bias, out, n, k);
    case DType::F16:
      return launch<Rows, Bias, DType::F16>(stream, w, x, bias, out, n, k);
    default:
      return cudaErrorInvalidValue;
  }
}

template <int Rows>
cudaError_t launch_bias(cudaStream_t stream, const void* w, const void* x, const void* bias, DType bias_dtype,
                        void* out, DType out_dtype, int64_t n, int64_t k) {
  if (bias == nullptr) return launch_out<Rows, DType::F32>(stream, w, x, nullptr, out, out_dtype, n, k);
  switch (bias_dtype) {
    case DType::F32:
      return launch_out<Rows, DType::F32>(stream, w, x, bias, out, out_dtype, n, k);
    case DType::BF16:
      return launch_out<Rows, DType::BF16>(stream, w, x, bias, out, out_dtype, n, k);
    case DType::F16:
      return launch_out<Rows, DType::F16>(stream, w, x, bias, out, out_dtype, n, k);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

bool linear_matvec_applies(int64_t m, int64_t k, const void* w, const void* x) {
  return m >= 1 && m <= kMatvecMaxRows && k > 0 && k % 8 == 0 && aligned16(w) && aligned16(x);
}

cudaError_t launch_linear_matvec(cudaStream_t stream, const void* w, const void* x, const void* bias,
                                 DType bias_dtype, void* out, DType out_dtype, int64_t m, int64_t n,
                                 int64_t k) {
  if (!linear_matvec_applies(m, k, w, x)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  switch (m) {
    case 1:
      return launch_bias<1>(stream, w, x, bias, bias_dtype, out, out_dtype, n, k);
    case 2:
      return launch_bias<2>(stream, w, x, bias, bias_dtype, out, out_dtype, n, k);
    case 3:
      return launch_bias<3>(stream, w, x, bias, bias_dtype, out, out_dtype, n, k);
    default:
      return launch_bias<4>(stream, w, x, bias, bias_dtype, out, out_dtype, n, k);
  }
}

}  // namespace dlm::cuda
