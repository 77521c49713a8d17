#include "engine/backend/gpu_probe.h"

#if defined(DLM_HAVE_CUDA)
#include "engine/backend/cuda/cuda_device.h"
#endif

namespace dlm {

GpuAvailability gpu_availability() {
#if defined(DLM_HAVE_CUDA)
  cuda::DeviceProbe probe = cuda::probe_devices();
  return {probe.count, probe.reason};
#else
  return {0, "dlm was built without the CUDA backend"};
#endif
}

}  // namespace dlm
