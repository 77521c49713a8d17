#include "samplers/selection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/error.h"

namespace dlm {

std::vector<int64_t> top_k_indices(std::span<const float> confidence, int64_t count) {
  const int64_t size = static_cast<int64_t>(confidence.size());
  DLM_CHECK(count >= 0 && count <= size, "top_k_indices: {} of {} candidates", count, size);
  std::vector<int64_t> order(confidence.size());
  std::iota(order.begin(), order.end(), 0);
  // NaN ranks lowest, which keeps the ordering strict and weak whatever the logits held.
  auto key = [&](int64_t i) {
    return std::isnan(confidence[i]) ? -std::numeric_limits<float>::infinity() : confidence[i];
  };
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&](int64_t a, int64_t b) { return key(a) > key(b) || (key(a) == key(b) && a < b); });
  order.resize(static_cast<size_t>(count));
  return order;
}

}  // namespace dlm
