#include "samplers/selection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/error.h"

namespace dlm {

namespace {

double rank_key(double value) {
  return std::isnan(value) ? -std::numeric_limits<double>::infinity() : value;
}

// Every index, by descending key, ties to the lower index.
std::vector<int64_t> ranking(std::span<const double> values) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return rank_key(values[a]) > rank_key(values[b]); });
  return order;
}

std::vector<double> confidences(std::span<const CandidateScore> candidates) {
  std::vector<double> out;
  out.reserve(candidates.size());
  for (const CandidateScore& c : candidates) out.push_back(c.confidence);
  return out;
}

// Fast-dLLM's get_transfer_index_dynamic: rank n (1-based) needs confidence >= 1 - factor / (n + 1), the
// first rank always passes. The first failing 0-based rank m is the count taken, except that a first failure
// at the last rank (or none at all) takes every candidate and a failure at rank 0 takes one.
int64_t factor_count(std::span<const double> sorted, double factor) {
  const int64_t n = static_cast<int64_t>(sorted.size());
  int64_t m = 0;
  for (; m < n; ++m) {
    const double needed = m == 0 ? -1.0 : 1.0 - factor / static_cast<double>(m + 2);
    if (rank_key(sorted[m]) < needed) break;
  }
  if (m == n) m = n - 1;  // the loop variable stops at the last rank when nothing fails
  if (m == 0 || m == n - 1) m += 1;
  return m;
}

// SDAR's entropy_bounded: the lowest entropies whose running sum stays below the bound, at least one.
std::vector<int64_t> entropy_bounded(std::span<const CandidateScore> candidates, double bound) {
  std::vector<double> negated;
  for (const CandidateScore& c : candidates) negated.push_back(-c.entropy);
  std::vector<int64_t> order = ranking(negated);
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t index : order) {
    sum += candidates[static_cast<size_t>(index)].entropy;
    if (!(sum < bound)) break;
    ++count;
  }
  order.resize(static_cast<size_t>(std::max<int64_t>(count, 1)));
  return order;
}

}  // namespace

std::vector<int64_t> top_k_indices(std::span<const double> values, int64_t count) {
  const int64_t size = static_cast<int64_t>(values.size());
  DLM_CHECK(count >= 0 && count <= size, "top_k_indices: {} of {} candidates", count, size);
  std::vector<int64_t> order = ranking(values);
  order.resize(static_cast<size_t>(count));
  return order;
}

std::vector<int64_t> select_commits(std::span<const CandidateScore> candidates, const CommitParams& params) {
  const int64_t n = static_cast<int64_t>(candidates.size());
  if (n == 0) return {};
  const std::vector<double> values = confidences(candidates);
  const int64_t scheduled = std::clamp<int64_t>(params.count, 0, n);
  switch (params.rule) {
    case CommitRule::Schedule:
      return top_k_indices(values, scheduled);
    case CommitRule::Threshold: {
      std::vector<int64_t> order = ranking(values);
      int64_t keep = 1;
      while (keep < n && rank_key(values[order[keep]]) >= params.threshold) ++keep;
      order.resize(static_cast<size_t>(keep));
      return order;
    }
    case CommitRule::Factor: {
      std::vector<int64_t> order = ranking(values);
      std::vector<double> sorted;
      for (int64_t index : order) sorted.push_back(values[index]);
      order.resize(static_cast<size_t>(factor_count(sorted, params.factor)));
      return order;
    }
    case CommitRule::Dynamic: {
      std::vector<int64_t> order = ranking(values);
      int64_t above = 0;
      while (above < n && rank_key(values[order[above]]) > params.threshold) ++above;
      order.resize(static_cast<size_t>(above >= scheduled ? above : scheduled));
      return order;
    }
    case CommitRule::EntropyBound:
      return entropy_bounded(candidates, params.entropy_bound);
  }
  return {};
}

}  // namespace dlm
