#pragma once
// The launchers of linear.cu's and linear_small.cu's kernels, for CudaBackend::linear (linear.cpp);
// conventions as in cuda_kernels.h (plain pointers and dtype.h enums only, since the .cu files are C++17).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/core/dtype.h"

namespace dlm::cuda {

// out[r, c] = acc[0, r, c] + ... + acc[splits - 1, r, c] + bias[c] over row-major m x n matrices: summed in
// f32 in that order, stored rounded to nearest even in out_dtype (f32, bf16 or f16). acc may be null (a
// product with K == 0): then out is the bias itself, or zero. bias may be null (then bias_dtype is ignored).
// out may be acc when splits is 1.
cudaError_t launch_linear_finish(cudaStream_t stream, const float* acc, int splits, const void* bias,
                                 DType bias_dtype, void* out, DType out_dtype, int64_t m, int64_t n);

// linear_small.cu: the product of few rows, for bf16 x [m, k] and W [n, k] (both contiguous and 16-byte
// aligned), in `splits` K ranges of `range` each, into f32 partial[splits, m, n].
inline constexpr int64_t kSmallProductMaxRows = 32;
struct SmallProductSplit {
  int splits = 1;
  int range = 0;
};
// Whether the kernel takes the shape: m <= kSmallProductMaxRows, k a multiple of 8, sizes within int.
bool small_m_product_fits(int64_t m, int64_t n, int64_t k);
// The K ranges that keep `sm_count` multiprocessors busy.
SmallProductSplit small_m_product_split(int64_t m, int64_t n, int64_t k, int sm_count);
cudaError_t launch_small_m_product(cudaStream_t stream, const void* w, const void* x, float* partial,
                                   int64_t m, int64_t n, int64_t k, SmallProductSplit split);

}  // namespace dlm::cuda
