#pragma once
// The CUDA backend the GPU test files share: one context and stream for the whole test binary, made on first
// use (a test checks for a device before it asks).
#include "engine/backend/cuda/cuda_backend.h"

namespace dlm::gpu_test {

inline CudaBackend& gpu() {
  static CudaBackend backend(0);
  return backend;
}

}  // namespace dlm::gpu_test
