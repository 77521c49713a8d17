#pragma once
// Selection policies: which of a step's candidate positions it commits, from one score per candidate
// (CommitRule in engine/io/generation_config.h). Candidates are indexed 0..n-1 in position order; rankings
// break ties by the lower index, and NaN ranks lowest.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/io/generation_config.h"

namespace dlm {

struct CandidateScore {
  double confidence = 0.0;  // higher is surer
  double entropy = 0.0;     // of the prediction's distribution; EntropyBound ranks by it, lower first
};

struct CommitParams {
  CommitRule rule = CommitRule::Schedule;
  int64_t count = 0;  // the schedule's count (Schedule, Dynamic); capped at the candidates
  double threshold = 0.9;
  double factor = 1.0;
  double entropy_bound = 0.1;
};

// Indices of the `count` highest values, highest first.
std::vector<int64_t> top_k_indices(std::span<const double> values, int64_t count);

// The candidates to commit, most confident first. Every rule but Schedule commits at least one candidate
// when there is any; Schedule commits min(count, n), which may be none.
std::vector<int64_t> select_commits(std::span<const CandidateScore> candidates, const CommitParams& params);

}  // namespace dlm
