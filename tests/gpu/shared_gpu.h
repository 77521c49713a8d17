#pragma once
// The CUDA backend the GPU test files share: one context and stream for the whole test binary, made on first
// use (a test checks for a device before it asks).
#include "engine/backend/cuda/cuda_backend.h"

namespace dlm::gpu_test {

inline CudaBackend& gpu() {
  static CudaBackend backend(0);
  return backend;
}

// A second backend whose attention must go through cuDNN (an Error where cuDNN cannot take a call).
inline CudaBackend& cudnn_gpu() {
  static CudaBackend backend(0, CudaOptions{CudaAttention::Cudnn, false});
  return backend;
}

// A third whose attention kernels split the keys of calls too small to fill the device (cuDNN never used).
inline CudaBackend& split_gpu() {
  static CudaBackend backend(0, CudaOptions{CudaAttention::Kernel, false, false, true});
  return backend;
}

// A fourth as the first but that its attention kernels never split a call's keys.
inline CudaBackend& unsplit_gpu() {
  static CudaBackend backend(0, CudaOptions{CudaAttention::Auto, false, false, false});
  return backend;
}

}  // namespace dlm::gpu_test
