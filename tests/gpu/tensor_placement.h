#pragma once
// Where the GPU op tests put device tensors: between guard bands of guard_bytes(), 72 by default (8-byte
// aligned, not 16, so a kernel that assumes more than element alignment shows up). for_each_alignment runs a
// test body once so and once with 16-byte aligned tensors (80-byte bands), which the kernels' 16-byte paths
// take.
#include <gtest/gtest.h>

#include <cstddef>

namespace dlm::gpu_test {

inline constexpr size_t kMisalignedGuardBytes = 72;
inline constexpr size_t kAlignedGuardBytes = 80;

inline size_t& guard_bytes() {
  static size_t bytes = kMisalignedGuardBytes;
  return bytes;
}

template <class Body>
void for_each_alignment(Body body) {
  {
    SCOPED_TRACE("tensors 8-byte aligned");
    body();
  }
  SCOPED_TRACE("tensors 16-byte aligned");
  guard_bytes() = kAlignedGuardBytes;
  body();
  guard_bytes() = kMisalignedGuardBytes;
}

}  // namespace dlm::gpu_test
