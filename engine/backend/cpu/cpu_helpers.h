#pragma once
// Helpers shared by the CPU op files: exact widening of bf16/f16 storage to f32, narrowing back, small
// weights as f32, and the work split for row-parallel loops.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "engine/core/half.h"
#include "engine/core/tensor.h"
#include "engine/core/thread_pool.h"

namespace dlm::cpu {

// The value of f16 bits, as f16_to_f32 in half.h computes it but without branches, so a loop over a weight
// panel vectorizes. Subnormals are renormalized by an exact f32 subtraction, never by denormal arithmetic.
inline float widen_f16(uint16_t half) {
  const uint32_t magnitude = half & 0x7fffu;
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  // All-ones masks instead of branches: inf/NaN, and zero/subnormal.
  const uint32_t special = 0u - static_cast<uint32_t>(magnitude >= 0x7c00u);
  const uint32_t tiny = 0u - static_cast<uint32_t>(magnitude < 0x0400u);
  // Exponent rebiased from 15 to 127; inf/NaN get the all-ones exponent and keep their payload.
  const uint32_t bits = (magnitude << 13) + 0x38000000u + (special & 0x38000000u);
  // Zero/subnormal m * 2^-24 as (1 + m/1024) 2^-14 minus 2^-14 (exact); computed always, selected by mask.
  const uint32_t renormalized = std::bit_cast<uint32_t>(std::bit_cast<float>(bits + 0x00800000u) - 0x1p-14f);
  return std::bit_cast<float>((tiny & renormalized) | (~tiny & bits) | sign);
}

// dst[i] = src[i] for src of dtype f32, bf16 or f16 (widening is exact).
inline void to_f32(DType dtype, const void* src, float* dst, int64_t n) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (dtype == DType::BF16) {
    const auto* bits = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(bits[i]);
  } else {
    DLM_CHECK(dtype == DType::F16, "cannot widen {} to f32", dtype_name(dtype));
    const auto* bits = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = widen_f16(bits[i]);
  }
}

// dst[i] = src[i] rounded to nearest even in dtype f32, bf16 or f16.
inline void from_f32(const float* src, DType dtype, void* dst, int64_t n) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (dtype == DType::BF16) {
    auto* bits = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) bits[i] = f32_to_bf16(src[i]);
  } else {
    DLM_CHECK(dtype == DType::F16, "cannot narrow f32 to {}", dtype_name(dtype));
    auto* bits = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) bits[i] = f32_to_f16(src[i]);
  }
}

// A small float tensor (a norm weight, a bias) as f32: the tensor itself when it is f32, else a widened copy
// made once per op call rather than once per row.
class F32Values {
 public:
  explicit F32Values(const Tensor& t) {
    if (t.dtype() == DType::F32) {
      data_ = static_cast<const float*>(t.data());
      return;
    }
    copy_.resize(static_cast<size_t>(t.numel()));
    to_f32(t.dtype(), t.data(), copy_.data(), t.numel());
    data_ = copy_.data();
  }
  const float* data() const { return data_; }

 private:
  std::vector<float> copy_;
  const float* data_ = nullptr;
};

// Work below this many elements is not worth waking another thread for.
inline constexpr int64_t kMinElementsPerChunk = 1 << 15;

// body(begin, end) over rows [0, rows) of row_elements elements each, in chunks worth a thread's wake-up.
inline void parallel_rows(ThreadPool& pool, int64_t rows, int64_t row_elements,
                          const std::function<void(int64_t, int64_t)>& body) {
  int64_t grain = std::max<int64_t>(1, kMinElementsPerChunk / std::max<int64_t>(1, row_elements));
  pool.parallel_for(rows, grain, body);
}

}  // namespace dlm::cpu
