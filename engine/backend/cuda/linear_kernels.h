#pragma once
// The launchers of linear.cu's and linear_few_rows.cu's kernels, for CudaBackend::linear (linear.cpp);
// conventions as in cuda_kernels.h
// (plain pointers and dtype.h enums only, since the .cu files are C++17).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/core/dtype.h"

namespace dlm::cuda {

// out[r, c] = acc[r, c] + bias[c] over a row-major m x n matrix: summed in f32, stored rounded to nearest
// even in out_dtype (f32, bf16 or f16). acc may be null (a product with K == 0): then out is the bias itself,
// or zero. bias may be null (then bias_dtype is ignored). out may be acc.
cudaError_t launch_linear_finish(cudaStream_t stream, const float* acc, const void* bias, DType bias_dtype,
                                 void* out, DType out_dtype, int64_t m, int64_t n);

// A product of few bf16 rows, out[m, n] = x[m, k] * w[n, k]^T + bias[n] (bias may be null; its dtype and
// out's are f32, bf16 or f16), for linear_few_rows.cu's kernel.
struct FewRowProduct {
  const void* w;
  const void* x;
  const void* bias;
  DType bias_dtype;
  void* out;
  DType out_dtype;
  int64_t m, n, k;
};

constexpr int64_t kFewRowProductMaxRows = 32;

// Whether the kernel takes the shape on a device of compute capability `sm_major`: 1 to 32 rows, K a
// multiple of 8 (w and x must also be 16-byte aligned), a device with thread-block clusters (sm_90).
bool few_row_product_fits(int64_t m, int64_t n, int64_t k, int sm_major);
// The sums are f32; the bias is added to the f32 sum and the result rounded once to out's dtype.
cudaError_t launch_few_row_product(cudaStream_t stream, const FewRowProduct& product, int sm_count);

}  // namespace dlm::cuda
