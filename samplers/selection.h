#pragma once
// Selection policies: which masked positions a step commits, given one confidence per candidate.
#include <cstdint>
#include <span>
#include <vector>

namespace dlm {

// Indices of the `count` highest confidences, highest first; ties go to the lower index.
std::vector<int64_t> top_k_indices(std::span<const float> confidence, int64_t count);

}  // namespace dlm
