#pragma once
// The launchers of linear.cu's and linear_small.cu's kernels, for CudaBackend::linear (linear.cpp);
// conventions as in cuda_kernels.h (plain pointers and dtype.h enums only, since the .cu files are C++17).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/core/dtype.h"

namespace dlm::cuda {

// out[r, c] = acc[r, c] + bias[c] over a row-major m x n matrix: summed in f32, stored rounded to nearest
// even in out_dtype (f32, bf16 or f16). acc may be null (a product with K == 0): then out is the bias itself,
// or zero. bias may be null (then bias_dtype is ignored). out may be acc.
cudaError_t launch_linear_finish(cudaStream_t stream, const float* acc, const void* bias, DType bias_dtype,
                                 void* out, DType out_dtype, int64_t m, int64_t n);

// linear_small.cu: out[m, n] = x[m, k] * W[n, k]^T (+ bias[n]) for few rows, bf16 x and W (both contiguous
// and 16-byte aligned), summed in f32 over `split.splits` K ranges of `split.range` and rounded once into
// out_dtype (f32, bf16 or f16); bias (f32, bf16 or f16) may be null.
inline constexpr int64_t kSmallProductMaxRows = 32;
inline constexpr int64_t kSmallProductArrivals = int64_t{1} << 16;  // counters, one per 128 rows of W
struct SmallProductSplit {
  int splits = 1;
  int range = 0;
};
struct SmallProduct {
  const void* w = nullptr;
  const void* x = nullptr;
  const void* bias = nullptr;
  DType bias_dtype = DType::F32;
  void* out = nullptr;
  DType out_dtype = DType::F32;
  float* partial = nullptr;  // [splits, m, n] f32 scratch when splits > 1
  int* arrivals = nullptr;   // kSmallProductArrivals device counters, zero before the first launch
  int64_t m = 0, n = 0, k = 0;
  SmallProductSplit split;
};
// Whether the kernel takes the shape: m <= kSmallProductMaxRows, k a multiple of 8, sizes within int.
bool small_m_product_fits(int64_t m, int64_t n, int64_t k);
// The K ranges that keep `sm_count` multiprocessors busy.
SmallProductSplit small_m_product_split(int64_t m, int64_t n, int64_t k, int sm_count);
cudaError_t launch_small_m_product(cudaStream_t stream, const SmallProduct& product);

}  // namespace dlm::cuda
