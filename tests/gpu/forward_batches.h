#pragma once
// Forward-call inputs the GPU backbone test files share: random token ids, consecutive positions, and
// logits asked for every row.
#include <cstdint>
#include <random>
#include <vector>

#include "backbones/backbone.h"

namespace dlm::gpu_test {

inline std::vector<int32_t> random_ids(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t& v : ids) v = id(gen);
  return ids;
}

inline std::vector<int32_t> iota_from(int32_t first, int64_t count) {
  std::vector<int32_t> positions(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) positions[static_cast<size_t>(i)] = first + static_cast<int32_t>(i);
  return positions;
}

inline void all_rows(ForwardBatch& batch) {
  batch.logit_rows.clear();
  for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
}

}  // namespace dlm::gpu_test
