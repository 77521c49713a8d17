#pragma once
// Kernel attributes the launchers set before a launch (C++17: included by .cu files).
#include <cuda_runtime.h>

#include <cstddef>

namespace dlm::cuda {

// Raises `kernel`'s dynamic shared memory limit on the current device to `bytes` unless a launch raised it
// that far already: the attribute is a driver call, and every layer of every forward launches these kernels.
cudaError_t allow_shared_bytes(const void* kernel, size_t bytes);

}  // namespace dlm::cuda
