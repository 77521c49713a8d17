#pragma once
// What the CUDA linear and attention tests share: host data in every float dtype, device tensors, guard bytes
// around outputs, and the element-wise comparison with the CPU's results (NaN must match NaN, +-inf must
// match exactly, finite values within a per-element tolerance).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "tests/gpu/shared_gpu.h"

namespace dlm::gpu_test {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

#define DLM_SKIP_WITHOUT_GPU()                                                \
  do {                                                                        \
    const cuda::DeviceProbe probe = cuda::probe_devices();                    \
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason; \
  } while (0)

inline CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// ---------------------------------------------------------------------------------------------- host data

// `values` rounded to nearest even in dtype (f32: unchanged), as the values a tensor of that dtype holds.
inline float round_to(DType dtype, float value) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(value));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(value));
  return value;
}

inline std::vector<float> rounded(DType dtype, std::vector<float> values) {
  for (float& v : values) v = round_to(dtype, v);
  return values;
}

// A host tensor of dtype holding `values` rounded to it.
inline HostTensor host_tensor(DType dtype, Shape shape, const std::vector<float>& values) {
  HostTensor out(dtype, shape);
  EXPECT_EQ(static_cast<int64_t>(values.size()), shape.numel());
  if (dtype == DType::F32) {
    std::copy(values.begin(), values.end(), out.data<float>());
  } else {
    auto* bits = static_cast<uint16_t*>(out.tensor().data());
    for (size_t i = 0; i < values.size(); ++i) {
      bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
    }
  }
  return out;
}

// The values of a float host tensor, widened to f32.
inline std::vector<float> values_of(const HostTensor& t) {
  const int64_t n = t.tensor().numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (t.tensor().dtype() == DType::F32) {
    std::memcpy(out.data(), t.tensor().data(), out.size() * sizeof(float));
    return out;
  }
  const auto* bits = static_cast<const uint16_t*>(t.tensor().data());
  for (int64_t i = 0; i < n; ++i) {
    out[i] = t.tensor().dtype() == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
  }
  return out;
}

inline std::vector<float> uniform_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = dist(gen);
  return out;
}

inline std::vector<float> normal_values(int64_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = dist(gen);
  return out;
}

// ------------------------------------------------------------------------------------------- device data

struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
};

inline DeviceTensor to_device(const HostTensor& host) {
  DeviceTensor d;
  d.buffer = gpu().allocate(std::max<size_t>(host.tensor().nbytes(), 1));
  d.tensor = d.buffer.view(host.tensor().dtype(), host.tensor().shape());
  gpu().copy(host.tensor(), d.tensor);
  return d;
}

inline HostTensor to_host(const Tensor& device) {
  HostTensor host(device.dtype(), device.shape());
  gpu().copy(device, host.tensor());
  return host;
}

// A device tensor `misalign` bytes past a 256-byte boundary, in a buffer whose every other byte, and the
// tensor's own bytes before the op, hold kFill: an op that writes outside its output changes a guard byte,
// one that leaves an element unwritten leaves 0x7f7f7f7f (3.4e38 as f32 or bf16), which no check accepts.
constexpr uint8_t kFill = 0x7f;
constexpr size_t kGuardBytes = 256;

struct Guarded {
  Buffer buffer;
  Tensor tensor;
  size_t offset = 0;
  size_t bytes = 0;
};

inline Guarded guarded(DType dtype, Shape shape, size_t misalign = 0) {
  Guarded g;
  g.offset = kGuardBytes + misalign;
  g.bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  const size_t total = g.offset + g.bytes + kGuardBytes;
  g.buffer = gpu().allocate(total);
  HostTensor fill(DType::U8, Shape{static_cast<int64_t>(total)});
  std::memset(fill.tensor().data(), kFill, total);
  gpu().copy(fill.tensor(), g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}));
  g.tensor = g.buffer.view(dtype, shape, g.offset);
  return g;
}

// Fails the test if a byte outside the tensor changed.
inline void expect_guards_intact(const Guarded& g, const std::string& what) {
  const size_t total = g.offset + g.bytes + kGuardBytes;
  HostTensor back(DType::U8, Shape{static_cast<int64_t>(total)});
  gpu().copy(g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}), back.tensor());
  const auto* bytes = static_cast<const uint8_t*>(back.tensor().data());
  int64_t changed = 0;
  for (size_t i = 0; i < total; ++i) {
    if ((i < g.offset || i >= g.offset + g.bytes) && bytes[i] != kFill) ++changed;
  }
  EXPECT_EQ(changed, 0) << what << ": bytes outside the output were written";
}

// ---------------------------------------------------------------------------------------------- comparison

// got vs want element by element: NaN with NaN, inf exactly, finite within tolerance[i]. Reports the first
// few mismatches and the count.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         const std::vector<double>& tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bool ok;
    if (std::isnan(want[i]) || std::isnan(got[i])) {
      ok = std::isnan(want[i]) && std::isnan(got[i]);
    } else if (std::isinf(want[i]) || std::isinf(got[i])) {
      ok = got[i] == want[i];
    } else {
      ok = std::fabs(static_cast<double>(got[i]) - want[i]) <= tolerance[i];
    }
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the CPU gives " << want[i]
                    << " (tolerance " << tolerance[i] << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements differ";
}

}  // namespace dlm::gpu_test
