#pragma once
// The launcher of linear.cu's kernel, for CudaBackend::linear (linear.cpp); conventions as in cuda_kernels.h
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

}  // namespace dlm::cuda
