// rms_norm, add_rms_norm and layer_norm: one block per row, sums in double as on the CPU (kernels; the ops
// are in norm.cpp). The element-wise tail uses explicitly rounded f32 operations (__fmul_rn, __fadd_rn) so
// that nvcc does not fuse them into FMAs the CPU reference does not use. Activations (x, out) are f32 or
// bf16: bf16 is widened on load and each result rounded once, so a bf16 output is the f32 result rounded.
#include <algorithm>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

// The second half of an RMS norm row: out = in * inv_rms * (w or 1 + w), for the groups of kCount columns
// this thread owns.
template <DType A, DType W, int kCount>
__device__ void scale_row(const typename Storage<A>::T* in, const typename Storage<W>::T* weight,
                          float inv_rms, NormWeight mode, int64_t width, typename Storage<A>::T* out) {
  for (int64_t c = threadIdx.x * kCount; c < width; c += blockDim.x * kCount) {
    float value[kCount], scale[kCount];
    load_group<A, kCount>(in, c, value);
    load_group<W, kCount>(weight, c, scale);
#pragma unroll
    for (int k = 0; k < kCount; ++k) {
      if (mode == NormWeight::OnePlus) scale[k] = __fadd_rn(1.0f, scale[k]);
      value[k] = __fmul_rn(__fmul_rn(value[k], inv_rms), scale[k]);
    }
    store_group<A, kCount>(out, c, value);
  }
}

__device__ float inverse_rms(double sum_of_squares, int64_t width, float eps, double* partials) {
  sum_of_squares = block_reduce(sum_of_squares, SumOp{}, 0.0, partials);
  return static_cast<float>(1.0 /
                            sqrt(sum_of_squares / static_cast<double>(width) + static_cast<double>(eps)));
}

template <int kCount>
__device__ __forceinline__ double squares(const float (&v)[kCount]) {
  double sum = 0.0;
#pragma unroll
  for (int k = 0; k < kCount; ++k) sum += static_cast<double>(v[k]) * static_cast<double>(v[k]);
  return sum;
}

// Threads move kCount columns per access (kGroup where the width and pointers allow, else 1).
template <DType A, DType W, int kCount>
__global__ void rms_norm_kernel(const typename Storage<A>::T* x, const typename Storage<W>::T* weight,
                                float eps, NormWeight mode, int64_t rows, int64_t width,
                                typename Storage<A>::T* out) {
  wait_for_previous_kernel();
  __shared__ double partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const typename Storage<A>::T* in = x + row * width;
    double sum_of_squares = 0.0;
    for (int64_t c = threadIdx.x * kCount; c < width; c += blockDim.x * kCount) {
      float v[kCount];
      load_group<A, kCount>(in, c, v);
      sum_of_squares += squares(v);
    }
    const float inv_rms = inverse_rms(sum_of_squares, width, eps, partials);
    scale_row<A, W, kCount>(in, weight, inv_rms, mode, width, out + row * width);
  }
}

// add_rms_norm for rows too wide for add_rms_norm_in_registers_kernel: the row's sum is rounded and stored
// first and normalized from the stored values, so the result is add then rms_norm bit for bit. A thread owns
// the same columns in both passes and the reduction's barrier separates them, so either output may be x or
// residual.
template <DType A, DType W, int kCount>
__global__ void add_rms_norm_kernel(const typename Storage<A>::T* x, const typename Storage<A>::T* residual,
                                    const typename Storage<W>::T* weight, float eps, NormWeight mode,
                                    int64_t rows, int64_t width, typename Storage<A>::T* sum_out,
                                    typename Storage<A>::T* norm_out) {
  wait_for_previous_kernel();
  __shared__ double partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * width;
    typename Storage<A>::T* sum = sum_out + base;
    double sum_of_squares = 0.0;
    for (int64_t c = threadIdx.x * kCount; c < width; c += blockDim.x * kCount) {
      float a[kCount], b[kCount];
      load_group<A, kCount>(x + base, c, a);
      load_group<A, kCount>(residual + base, c, b);
#pragma unroll
      for (int k = 0; k < kCount; ++k) a[k] = __fadd_rn(a[k], b[k]);
      store_group<A, kCount>(sum, c, a);
      load_group<A, kCount>(sum, c, a);  // the stored (rounded) values
      sum_of_squares += squares(a);
    }
    const float inv_rms = inverse_rms(sum_of_squares, width, eps, partials);
    scale_row<A, W, kCount>(sum, weight, inv_rms, mode, width, norm_out + base);
  }
}

// v as it reads back after a store of dtype A.
template <DType A>
__device__ __forceinline__ float stored(float v) {
  typename Storage<A>::T t;
  Storage<A>::store(&t, 0, v);
  return Storage<A>::load(&t, 0);
}

// add_rms_norm with the row in registers: a thread owns up to kPerThread groups of kCount columns, issues
// every load of its x, residual and weight groups before it uses the first, and normalizes its sums from
// registers. The sums are rounded as stored and the operations are add_rms_norm_kernel's, so are the bits.
// Each output element is written by the thread that read its columns, after all its reads: either output
// may be x or residual.
template <DType A, DType W, int kCount, int kPerThread>
__global__ void add_rms_norm_in_registers_kernel(const typename Storage<A>::T* x,
                                                 const typename Storage<A>::T* residual,
                                                 const typename Storage<W>::T* weight, float eps,
                                                 NormWeight mode, int64_t rows, int64_t width,
                                                 typename Storage<A>::T* sum_out,
                                                 typename Storage<A>::T* norm_out) {
  wait_for_previous_kernel();
  __shared__ double partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * width;
    float sum[kPerThread][kCount], other[kPerThread][kCount], scale[kPerThread][kCount];
#pragma unroll
    for (int g = 0; g < kPerThread; ++g) {
      const int64_t c = (threadIdx.x + static_cast<int64_t>(g) * blockDim.x) * kCount;
      if (c >= width) continue;
      load_group<A, kCount>(x + base, c, sum[g]);
      load_group<A, kCount>(residual + base, c, other[g]);
      load_group<W, kCount>(weight, c, scale[g]);
    }
    double sum_of_squares = 0.0;
#pragma unroll
    for (int g = 0; g < kPerThread; ++g) {
      const int64_t c = (threadIdx.x + static_cast<int64_t>(g) * blockDim.x) * kCount;
      if (c >= width) continue;
#pragma unroll
      for (int k = 0; k < kCount; ++k) sum[g][k] = stored<A>(__fadd_rn(sum[g][k], other[g][k]));
      store_group<A, kCount>(sum_out + base, c, sum[g]);
      sum_of_squares += squares(sum[g]);
    }
    const float inv_rms = inverse_rms(sum_of_squares, width, eps, partials);
#pragma unroll
    for (int g = 0; g < kPerThread; ++g) {
      const int64_t c = (threadIdx.x + static_cast<int64_t>(g) * blockDim.x) * kCount;
      if (c >= width) continue;
#pragma unroll
      for (int k = 0; k < kCount; ++k) {
        if (mode == NormWeight::OnePlus) scale[g][k] = __fadd_rn(1.0f, scale[g][k]);
        sum[g][k] = __fmul_rn(__fmul_rn(sum[g][k], inv_rms), scale[g][k]);
      }
      store_group<A, kCount>(norm_out + base, c, sum[g]);
    }
  }
}

// Two passes over the row (mean, then the biased variance about it) and the result centred in double, as on
// the CPU: a row far from 0 keeps its spread.
template <DType A, DType W, DType B, bool kHasBias>
__global__ void layer_norm_kernel(const typename Storage<A>::T* x, const typename Storage<W>::T* weight,
                                  const typename Storage<B>::T* bias, float eps, int64_t rows, int64_t width,
                                  typename Storage<A>::T* out) {
  wait_for_previous_kernel();
  __shared__ double partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const typename Storage<A>::T* in = x + row * width;
    typename Storage<A>::T* result = out + row * width;
    double sum = 0.0;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
      sum += static_cast<double>(Storage<A>::load(in, c));
    const double mean = block_reduce(sum, SumOp{}, 0.0, partials) / static_cast<double>(width);
    double squares = 0.0;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
      const double d = static_cast<double>(Storage<A>::load(in, c)) - mean;
      squares += d * d;
    }
    const double variance = block_reduce(squares, SumOp{}, 0.0, partials) / static_cast<double>(width);
    const double inv_std = 1.0 / sqrt(variance + static_cast<double>(eps));
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
      const auto normalized =
          static_cast<float>((static_cast<double>(Storage<A>::load(in, c)) - mean) * inv_std);
      float value = __fmul_rn(normalized, Storage<W>::load(weight, c));
      if (kHasBias) value = __fadd_rn(value, Storage<B>::load(bias, c));
      Storage<A>::store(result, c, value);
    }
  }
}

// What an RMS norm launch takes; `residual` and `sum_out` only for add_rms_norm (null for rms_norm).
struct RmsArgs {
  const void* x;
  const void* residual;
  const void* weight;
  float eps;
  NormWeight mode;
  int64_t rows, width;
  void* sum_out;
  void* out;
};

// Rows of at most this many get a thread per group in add_rms_norm: few rows make few blocks, so each block's
// loads should all be in flight at once.
constexpr int64_t kFewRows = 256;
constexpr int kMaxThreads = 1024;

template <DType A, DType W, int kCount, int kPerThread>
void launch_add_rms_in_registers(cudaStream_t stream, const RmsArgs& a, int threads) {
  using T = typename Storage<A>::T;
  launch_overlapping(add_rms_norm_in_registers_kernel<A, W, kCount, kPerThread>, row_blocks(a.rows), threads,
                     0, stream, static_cast<const T*>(a.x), static_cast<const T*>(a.residual),
                     static_cast<const typename Storage<W>::T*>(a.weight), a.eps, a.mode, a.rows, a.width,
                     static_cast<T*>(a.sum_out), static_cast<T*>(a.out));
}

// add_rms_norm in registers where a row's groups fit 4 a thread; false where the row is wider.
template <DType A, DType W, int kCount>
bool launch_add_rms_fitting(cudaStream_t stream, const RmsArgs& a) {
  const int64_t groups = (a.width + kCount - 1) / kCount;
  int threads = row_threads(groups);
  if (a.rows <= kFewRows) threads = static_cast<int>(std::min<int64_t>(kMaxThreads, (groups + 31) / 32 * 32));
  const int64_t per_thread = (groups + threads - 1) / threads;
  if (per_thread == 1) {
    launch_add_rms_in_registers<A, W, kCount, 1>(stream, a, threads);
  } else if (per_thread == 2) {
    launch_add_rms_in_registers<A, W, kCount, 2>(stream, a, threads);
  } else if (per_thread <= 4) {
    launch_add_rms_in_registers<A, W, kCount, 4>(stream, a, threads);
  } else {
    return false;
  }
  return true;
}

template <DType A, DType W, int kCount>
void launch_rms_grouped(cudaStream_t stream, const RmsArgs& a) {
  using T = typename Storage<A>::T;
  const auto* weight = static_cast<const typename Storage<W>::T*>(a.weight);
  const int threads = row_threads(a.width / kCount);
  if (a.residual == nullptr) {
    launch_overlapping(rms_norm_kernel<A, W, kCount>, row_blocks(a.rows), threads, 0, stream,
                       static_cast<const T*>(a.x), weight, a.eps, a.mode, a.rows, a.width,
                       static_cast<T*>(a.out));
  } else if (!launch_add_rms_fitting<A, W, kCount>(stream, a)) {
    launch_overlapping(add_rms_norm_kernel<A, W, kCount>, row_blocks(a.rows), threads, 0, stream,
                       static_cast<const T*>(a.x), static_cast<const T*>(a.residual), weight, a.eps, a.mode,
                       a.rows, a.width, static_cast<T*>(a.sum_out), static_cast<T*>(a.out));
  }
}

template <DType A, DType W>
cudaError_t launch_rms(cudaStream_t stream, const RmsArgs& a) {
  constexpr int kCount = kGroup<A>;
  bool grouped = a.width % kCount == 0;
  for (const void* p :
       {a.x, a.residual, a.weight, static_cast<const void*>(a.sum_out), static_cast<const void*>(a.out)}) {
    grouped = grouped && (p == nullptr || aligned16(p));
  }
  if (grouped) {
    launch_rms_grouped<A, W, kCount>(stream, a);
  } else {
    launch_rms_grouped<A, W, 1>(stream, a);
  }
  return cudaGetLastError();
}

template <DType A>
cudaError_t launch_rms_for_weight(cudaStream_t stream, DType weight_dtype, const RmsArgs& a) {
  switch (weight_dtype) {
    case DType::F32:
      return launch_rms<A, DType::F32>(stream, a);
    case DType::BF16:
      return launch_rms<A, DType::BF16>(stream, a);
    case DType::F16:
      return launch_rms<A, DType::F16>(stream, a);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launch_rms_any(cudaStream_t stream, DType x_dtype, DType weight_dtype, const RmsArgs& a) {
  if (a.rows == 0 || a.width == 0) return cudaSuccess;
  switch (x_dtype) {
    case DType::F32:
      return launch_rms_for_weight<DType::F32>(stream, weight_dtype, a);
    case DType::BF16:
      return launch_rms_for_weight<DType::BF16>(stream, weight_dtype, a);
    default:
      return cudaErrorInvalidValue;
  }
}

template <DType A, DType W, DType B, bool kHasBias>
cudaError_t launch_layer(cudaStream_t stream, const void* x, const void* weight, const void* bias, float eps,
                         int64_t rows, int64_t width, void* out) {
  launch_overlapping(layer_norm_kernel<A, W, B, kHasBias>, row_blocks(rows), row_threads(width), 0, stream,
                     static_cast<const typename Storage<A>::T*>(x),
                     static_cast<const typename Storage<W>::T*>(weight),
                     static_cast<const typename Storage<B>::T*>(bias), eps, rows, width,
                     static_cast<typename Storage<A>::T*>(out));
  return cudaGetLastError();
}

template <DType A, DType W>
cudaError_t launch_layer_for_bias(cudaStream_t stream, const void* x, const void* weight, const void* bias,
                                  DType bias_dtype, float eps, int64_t rows, int64_t width, void* out) {
  if (bias == nullptr)
    return launch_layer<A, W, DType::F32, false>(stream, x, weight, nullptr, eps, rows, width, out);
  switch (bias_dtype) {
    case DType::F32:
      return launch_layer<A, W, DType::F32, true>(stream, x, weight, bias, eps, rows, width, out);
    case DType::BF16:
      return launch_layer<A, W, DType::BF16, true>(stream, x, weight, bias, eps, rows, width, out);
    case DType::F16:
      return launch_layer<A, W, DType::F16, true>(stream, x, weight, bias, eps, rows, width, out);
    default:
      return cudaErrorInvalidValue;
  }
}

template <DType A>
cudaError_t launch_layer_for_weight(cudaStream_t stream, const void* x, const void* weight,
                                    DType weight_dtype, const void* bias, DType bias_dtype, float eps,
                                    int64_t rows, int64_t width, void* out) {
  switch (weight_dtype) {
    case DType::F32:
      return launch_layer_for_bias<A, DType::F32>(stream, x, weight, bias, bias_dtype, eps, rows, width, out);
    case DType::BF16:
      return launch_layer_for_bias<A, DType::BF16>(stream, x, weight, bias, bias_dtype, eps, rows, width,
                                                   out);
    case DType::F16:
      return launch_layer_for_bias<A, DType::F16>(stream, x, weight, bias, bias_dtype, eps, rows, width, out);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_rms_norm(cudaStream_t stream, const void* x, DType x_dtype, const void* weight,
                            DType weight_dtype, float eps, NormWeight mode, int64_t rows, int64_t width,
                            void* out) {
  return launch_rms_any(stream, x_dtype, weight_dtype,
                        {x, nullptr, weight, eps, mode, rows, width, nullptr, out});
}

cudaError_t launch_add_rms_norm(cudaStream_t stream, const void* x, const void* residual, DType x_dtype,
                                const void* weight, DType weight_dtype, float eps, NormWeight mode,
                                int64_t rows, int64_t width, void* sum_out, void* norm_out) {
  return launch_rms_any(stream, x_dtype, weight_dtype,
                        {x, residual, weight, eps, mode, rows, width, sum_out, norm_out});
}

cudaError_t launch_layer_norm(cudaStream_t stream, const void* x, DType x_dtype, const void* weight,
                              DType weight_dtype, const void* bias, DType bias_dtype, float eps, int64_t rows,
                              int64_t width, void* out) {
  if (rows == 0 || width == 0) return cudaSuccess;
  switch (x_dtype) {
    case DType::F32:
      return launch_layer_for_weight<DType::F32>(stream, x, weight, weight_dtype, bias, bias_dtype, eps, rows,
                                                 width, out);
    case DType::BF16:
      return launch_layer_for_weight<DType::BF16>(stream, x, weight, weight_dtype, bias, bias_dtype, eps,
                                                  rows, width, out);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
