#pragma once
// What the CUDA op tests share: a CudaBackend per test suite (tests skip, with the probe's reason, without a
// device), guarded device tensors, host data with every class of value, and comparisons with the CPU backend
// (the reference).
//
// Tolerances (in each test's comments) follow from how the two backends compute: where both perform the same
// IEEE f32 operations in the same order the comparison is exact; where they differ only in the order of a
// double-precision sum, or in a double-precision library function rounded once to f32, results agree to an
// ulp or two; where the CPU's f32 expf (glibc, < 1 ulp) meets CUDA's expf (<= 2 ulp), the bound is derived
// from those 3 ulps. A non-finite reference value must be matched exactly (NaN by NaN, an infinity by the
// same infinity), and a finite one by a finite one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "tests/gpu/tensor_placement.h"

namespace dlm::op_test {

using gpu_test::for_each_alignment;
using gpu_test::guard_bytes;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();

// ------------------------------------------------------------------------------------------ the backends

inline std::unique_ptr<CudaBackend>& gpu_slot() {
  static std::unique_ptr<CudaBackend> backend;
  return backend;
}

inline CudaBackend& gpu() {
  return *gpu_slot();
}

// Four threads whatever the machine, as in the CPU op tests.
inline CpuBackend& cpu() {
  static CpuBackend backend(4);
  return backend;
}

// Every test of this file derives from GpuTest: it skips, with the probe's reason, when there is no device.
// One CudaBackend per test suite, destroyed before the process exits.
class GpuTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cuda::probe_devices().count > 0 && !gpu_slot()) gpu_slot() = std::make_unique<CudaBackend>(0);
  }
  static void TearDownTestSuite() { gpu_slot().reset(); }
  void SetUp() override {
    const cuda::DeviceProbe probe = cuda::probe_devices();
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
    ASSERT_TRUE(gpu_slot()) << "a CUDA device is present but the CudaBackend could not be created";
  }
};

template <class Param>
class GpuParamTest : public GpuTest, public ::testing::WithParamInterface<Param> {};

// ----------------------------------------------------------------------------------- guarded device data

// Guard bands around every device tensor: gpu_test::guard_bytes() (tensor_placement.h), a multiple of 8 bytes
// (i64 ids stay aligned).
constexpr uint8_t kInputGuard = 0xff;   // NaN in every float dtype, -1 as an id: stray reads poison results
constexpr uint8_t kOutputGuard = 0xa5;  // a pattern no kernel writes by accident

// A device tensor between two guard bands of `pattern` bytes; the tensor's own bytes start as the pattern
// too, so an element an op fails to write keeps a value the reference does not have.
struct Guarded {
  Buffer buffer;
  Tensor tensor;
  uint8_t pattern = 0;
  size_t guard = 0;  // bytes before and after the tensor
  operator const Tensor&() const { return tensor; }
};

inline Guarded guarded(DType dtype, Shape shape, uint8_t pattern) {
  Guarded g;
  const size_t payload = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  g.guard = guard_bytes();
  const size_t total = payload + 2 * g.guard;
  g.buffer = gpu().allocate(total);
  HostTensor fill(DType::U8, Shape{static_cast<int64_t>(total)});
  std::memset(fill.tensor().data(), pattern, total);
  gpu().copy(fill, g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}));
  g.tensor = g.buffer.view(dtype, shape, g.guard);
  g.pattern = pattern;
  return g;
}

inline Guarded output(DType dtype, Shape shape) {
  return guarded(dtype, shape, kOutputGuard);
}

inline Guarded upload(const HostTensor& host) {
  Guarded g = guarded(host.tensor().dtype(), host.tensor().shape(), kInputGuard);
  gpu().copy(host, g.tensor);
  return g;
}

inline HostTensor download(const Tensor& t) {
  HostTensor host(t.dtype(), t.shape());
  gpu().copy(t, host);
  return host;
}

// The bytes before and after the tensor are still the guard pattern.
inline void expect_guards_intact(const Guarded& g) {
  const int64_t total = static_cast<int64_t>(g.buffer.bytes());
  HostTensor bytes = download(g.buffer.view(DType::U8, Shape{total}));
  const auto* b = static_cast<const uint8_t*>(bytes.tensor().data());
  const int64_t payload = static_cast<int64_t>(g.tensor.nbytes());
  int64_t bad = 0;
  int64_t first_bad = -1;
  for (int64_t i = 0; i < total; ++i) {
    const bool guard = i < static_cast<int64_t>(g.guard) || i >= static_cast<int64_t>(g.guard) + payload;
    if (guard && b[i] != g.pattern) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << bad << " guard bytes of " << g.tensor.describe() << " overwritten, the first at byte "
                    << first_bad - static_cast<int64_t>(g.guard) << " relative to the tensor's start";
}

// ------------------------------------------------------------------------------------------ host data

inline HostTensor f32(Shape shape, const std::vector<float>& values) {
  return HostTensor::from(shape, values);
}

// `values` in dtype (f32, or bf16/f16 rounded to nearest even).
inline HostTensor host_of(DType dtype, Shape shape, const std::vector<float>& values) {
  if (dtype == DType::F32) return f32(shape, values);
  HostTensor out(dtype, shape);
  auto* bits = static_cast<uint16_t*>(out.tensor().data());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return out;
}

// Random bit patterns: every class of value (NaN payloads with the quiet bit clear, subnormals, infinities).
inline HostTensor random_bits(DType dtype, Shape shape, uint32_t seed) {
  HostTensor out(dtype, shape);
  std::mt19937 gen(seed);
  const int64_t n = shape.numel();
  if (dtype_size(dtype) == 2) {
    auto* bits = static_cast<uint16_t*>(out.tensor().data());
    for (int64_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(gen());
  } else {
    auto* bits = static_cast<uint32_t*>(out.tensor().data());
    for (int64_t i = 0; i < n; ++i) bits[i] = static_cast<uint32_t>(gen());
  }
  return out;
}

inline std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = dist(gen);
  return out;
}

inline std::vector<float> normal(int64_t n, uint32_t seed, float sigma) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = dist(gen);
  return out;
}

// Puts each of `specials` at `copies` random positions of v.
inline void sprinkle(std::vector<float>& v, uint32_t seed, const std::vector<float>& specials,
                     int copies = 1) {
  if (v.empty()) return;
  std::mt19937 gen(seed);
  for (int c = 0; c < copies; ++c) {
    for (float s : specials) v[gen() % v.size()] = s;
  }
}

// ------------------------------------------------------------------------------------------ comparisons

struct Tolerance {
  double abs = 0.0;
  double rel = 0.0;
};
constexpr Tolerance kExact{0.0, 0.0};

// f32 results: non-finite reference values matched exactly, finite ones within abs + rel * |want| by finite
// values. Reports the first few mismatches with their index.
inline void expect_close(const HostTensor& got, const HostTensor& want, Tolerance tol) {
  ASSERT_EQ(got.tensor().shape(), want.tensor().shape());
  ASSERT_EQ(got.tensor().dtype(), DType::F32);
  ASSERT_EQ(want.tensor().dtype(), DType::F32);
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  const int64_t n = want.tensor().numel();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool ok;
    if (std::isnan(w[i])) {
      ok = std::isnan(g[i]);
    } else if (std::isinf(w[i])) {
      ok = g[i] == w[i];
    } else {
      ok = std::isfinite(g[i]) && std::fabs(static_cast<double>(g[i]) - w[i]) <=
                                      tol.abs + tol.rel * std::fabs(static_cast<double>(w[i]));
    }
    if (!ok && ++bad <= 8) {
      ADD_FAILURE() << "index " << i << ": got " << g[i] << ", want " << w[i] << " (difference "
                    << static_cast<double>(g[i]) - w[i] << ", tolerance " << tol.abs << " + " << tol.rel
                    << " * |want|)";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n << " elements differ";
}

// The same bytes (data movement and integer results: cast, embedding, argmax, top_k).
inline void expect_same_bits(const HostTensor& got, const HostTensor& want) {
  ASSERT_EQ(got.tensor().shape(), want.tensor().shape());
  ASSERT_EQ(got.tensor().dtype(), want.tensor().dtype());
  const size_t element = dtype_size(want.tensor().dtype());
  const auto* g = static_cast<const uint8_t*>(got.tensor().data());
  const auto* w = static_cast<const uint8_t*>(want.tensor().data());
  const int64_t n = want.tensor().numel();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(g + i * element, w + i * element, element) == 0) continue;
    if (++bad <= 8) {
      uint64_t gb = 0;
      uint64_t wb = 0;
      std::memcpy(&gb, g + i * element, element);
      std::memcpy(&wb, w + i * element, element);
      ADD_FAILURE() << "element " << i << ": got bits 0x" << std::hex << gb << ", want 0x" << wb << std::dec;
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n << " elements differ";
}

inline std::string shape_name(const std::vector<int64_t>& dims) {
  std::string name;
  for (int64_t d : dims) {
    if (!name.empty()) name += 'x';
    name += std::to_string(d);
  }
  return name;
}

}  // namespace dlm::op_test
