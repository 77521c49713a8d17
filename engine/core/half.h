#pragma once
// Scalar conversions between f32 and the 16/8-bit float formats, bit-exact and branch-light.
// Plain C++17 so CUDA code can include it.
#include <cstdint>
#include <cstring>

namespace dlm {

inline float bf16_to_f32(uint16_t bits) {
  uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &widened, sizeof out);
  return out;
}

// Round to nearest even, as torch does; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float f16_to_f32(uint16_t half) {
  uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1fu) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3ffu;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Round to nearest even, overflow to infinity, NaN stays NaN.
inline uint16_t f32_to_f16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (magnitude >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65536: inf
  if (magnitude < 0x38800000u) {                                               // below f16 normal range
    if (magnitude < 0x33000000u) return sign;                                  // rounds to zero
    uint32_t exponent = magnitude >> 23;
    uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exponent;  // 14..24
    uint32_t half_mantissa = mantissa >> shift;
    uint32_t remainder = mantissa & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1u))) ++half_mantissa;
    return static_cast<uint16_t>(sign | half_mantissa);
  }
  uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u) - 0x38000000u;
  if (rounded >= 0x0f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

// OCP FP8 E4M3 (no infinities; 0x7f/0xff are NaN), as stored in safetensors F8_E4M3.
inline float f8e4m3_to_f32(uint8_t byte) {
  uint32_t sign = static_cast<uint32_t>(byte & 0x80u) << 24;
  uint32_t exponent = (byte >> 3) & 0xfu;
  uint32_t mantissa = byte & 0x7u;
  uint32_t bits;
  if (exponent == 0xfu && mantissa == 0x7u) {
    bits = sign | 0x7fc00000u;
  } else if (exponent != 0) {
    bits = sign | ((exponent + 120u) << 23) | (mantissa << 20);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    int shift = 0;
    while ((mantissa & 0x8u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x7u;
    bits = sign | (static_cast<uint32_t>(121 - shift) << 23) | (mantissa << 20);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

}  // namespace dlm
