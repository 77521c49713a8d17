#pragma once
// CUDA device discovery through the runtime API only, so binaries start where no driver is installed.
#include <string>

namespace dlm::cuda {

struct DeviceProbe {
  int count = 0;       // usable devices; 0 when there is no driver or no GPU
  std::string reason;  // why count is 0, for skip messages
};

DeviceProbe probe_devices();

}  // namespace dlm::cuda
