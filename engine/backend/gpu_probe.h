#pragma once
// Whether a GPU backend can run here, and why not: GPU tests skip with this reason.
#include <string>

namespace dlm {

struct GpuAvailability {
  int devices = 0;
  std::string reason;  // empty when devices > 0
};

GpuAvailability gpu_availability();

}  // namespace dlm
