#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dlm {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U8, I8, F8E4M3 };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // "f32", "bf16", ...
bool is_floating(DType dtype);

// Safetensors spells dtypes "F32", "BF16", "F8_E4M3", ...
std::string_view safetensors_dtype_name(DType dtype);
std::optional<DType> dtype_from_safetensors(std::string_view name);

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::U8;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::I8;
};

}  // namespace dlm
