#include <cstdlib>
#include <cstring>

#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {

bool overlapped_launches() {
  static const bool on = [] {
    const char* value = std::getenv("DLM_PDL");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return on;
}

}  // namespace dlm::cuda
