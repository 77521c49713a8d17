#include "backbones/weight_collector.h"

#include <fmt/format.h>

#include <algorithm>

namespace dlm {

Tensor WeightCollector::require(const std::string& name, const Shape& expected) {
  requested_.push_back(name);
  if (!checkpoint_.contains(name)) {
    problems_.push_back(fmt::format("{}: missing (expected shape {})", name, expected.str()));
    return Tensor();
  }
  const TensorEntry& entry = checkpoint_.entry(name);
  bool shape_ok = entry.shape == expected;
  bool dtype_ok = entry.dtype == DType::F32 || entry.dtype == DType::BF16 || entry.dtype == DType::F16;
  if (!shape_ok) {
    problems_.push_back(
        fmt::format("{}: expected shape {}, got {}", name, expected.str(), entry.shape.str()));
  }
  if (!dtype_ok) {
    problems_.push_back(
        fmt::format("{}: dtype {} is not supported (f32, bf16 or f16)", name, dtype_name(entry.dtype)));
  }
  return shape_ok && dtype_ok ? checkpoint_.tensor(name) : Tensor();
}

void WeightCollector::finish(std::string_view what) const {
  if (problems_.empty()) return;
  fail_input("{}: {} weight problem{}: {}", what, problems_.size(), problems_.size() == 1 ? "" : "s",
             fmt::join(problems_, "; "));
}

std::vector<std::string> WeightCollector::unused() const {
  std::vector<std::string> requested = requested_;
  std::sort(requested.begin(), requested.end());
  std::vector<std::string> unused;
  for (const std::string& name : checkpoint_.names()) {
    if (!std::binary_search(requested.begin(), requested.end(), name)) unused.push_back(name);
  }
  return unused;
}

}  // namespace dlm
