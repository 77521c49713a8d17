#pragma once
// What the CPU dense-op tests share: the backend (four threads, so every parallel split is exercised), host
// tensors in every float dtype, seeded random values, and element-wise comparisons.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"

namespace dlm::dense_test {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline CpuBackend& backend() {
  static CpuBackend cpu(4);
  return cpu;
}

inline HostTensor f32(Shape shape, const std::vector<float>& values) {
  return HostTensor::from(shape, values);
}

inline HostTensor i32(Shape shape, const std::vector<int32_t>& values) {
  return HostTensor::from(shape, values);
}

// A bf16 or f16 tensor holding `values` rounded to nearest even.
inline HostTensor narrow(DType dtype, Shape shape, const std::vector<float>& values) {
  HostTensor out(dtype, shape);
  auto* bits = static_cast<uint16_t*>(out.tensor().data());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return out;
}

// The values a bf16/f16 tensor holds, widened to f32.
inline std::vector<float> widen(const HostTensor& t) {
  const auto* bits = static_cast<const uint16_t*>(t.tensor().data());
  std::vector<float> out(static_cast<size_t>(t.tensor().numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = t.tensor().dtype() == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
  }
  return out;
}

inline HostTensor filled(Shape shape, float value) {
  return f32(shape, std::vector<float>(static_cast<size_t>(shape.numel()), value));
}

// Uniform in [-scale, scale), from a fixed seed.
inline std::vector<float> random_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = scale * (static_cast<float>(gen()) / 4294967296.0f * 2.0f - 1.0f);
  return out;
}

inline void expect_near_all(const std::vector<float>& got, const std::vector<double>& want,
                            double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance) << "at index " << i;
  }
}

inline void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tolerance) {
  expect_near_all(got, std::vector<double>(want.begin(), want.end()), tolerance);
}

}  // namespace dlm::dense_test
