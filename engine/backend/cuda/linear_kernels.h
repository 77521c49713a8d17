#pragma once
// The launchers of linear.cu's and linear_matvec.cu's kernels, for CudaBackend::linear (linear.cpp);
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

// The most rows of x linear_matvec takes.
inline constexpr int64_t kMatvecMaxRows = 4;

// Whether launch_linear_matvec takes a product of m rows of length k with these bf16 operands: 1 to
// kMatvecMaxRows rows, k a positive multiple of 8, w and x 16-byte aligned.
bool linear_matvec_applies(int64_t m, int64_t k, const void* w, const void* x);

// out[r, j] = sum_k x[r, k] w[j, k] (+ bias[j]) for bf16 w (n x k) and x (m x k), both row-major: summed in
// f32 in a fixed order, the bias added last, stored rounded to nearest even in out_dtype (f32, bf16 or f16).
// bias may be null (then bias_dtype is ignored). cudaErrorInvalidValue where linear_matvec_applies does not.
cudaError_t launch_linear_matvec(cudaStream_t stream, const void* w, const void* x, const void* bias,
                                 DType bias_dtype, void* out, DType out_dtype, int64_t m, int64_t n,
                                 int64_t k);

}  // namespace dlm::cuda
