#include <cuda_runtime.h>

#include "engine/backend/cuda/cuda_device.h"

namespace dlm::cuda {

DeviceProbe probe_devices() {
  DeviceProbe probe;
  cudaError_t status = cudaGetDeviceCount(&probe.count);
  if (status != cudaSuccess) {
    probe.count = 0;
    probe.reason = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls start clean
  } else if (probe.count == 0) {
    probe.reason = "no CUDA device present";
  }
  return probe;
}

}  // namespace dlm::cuda
