#include "engine/core/dtype.h"

#include "engine/core/error.h"

namespace dlm {

namespace {
struct DTypeInfo {
  DType dtype;
  size_t size;
  std::string_view name;
  std::string_view safetensors_name;
  bool floating;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, 4, "f32", "F32", true},  {DType::BF16, 2, "bf16", "BF16", true},
    {DType::F16, 2, "f16", "F16", true},  {DType::I32, 4, "i32", "I32", false},
    {DType::I64, 8, "i64", "I64", false}, {DType::U8, 1, "u8", "U8", false},
    {DType::I8, 1, "i8", "I8", false},    {DType::F8E4M3, 1, "f8e4m3", "F8_E4M3", true},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  fail("unknown dtype value {}", static_cast<int>(dtype));
}
}  // namespace

size_t dtype_size(DType dtype) {
  return info(dtype).size;
}
std::string_view dtype_name(DType dtype) {
  return info(dtype).name;
}
bool is_floating(DType dtype) {
  return info(dtype).floating;
}
std::string_view safetensors_dtype_name(DType dtype) {
  return info(dtype).safetensors_name;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& entry : kDTypes) {
    if (entry.safetensors_name == name) return entry.dtype;
  }
  return std::nullopt;
}

}  // namespace dlm
