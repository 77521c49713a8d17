#include "engine/backend/cuda/cuda_device.h"

#include <gtest/gtest.h>

namespace dlm::cuda {
namespace {

// Without a device the probe must explain why: every GPU test skips with that reason.
TEST(CudaDevice, ReportsDevicesOrAReason) {
  DeviceProbe probe = probe_devices();
  if (probe.count == 0) {
    EXPECT_FALSE(probe.reason.empty());
    GTEST_SKIP() << "no CUDA device: " << probe.reason;
  }
  EXPECT_TRUE(probe.reason.empty());
}

}  // namespace
}  // namespace dlm::cuda
