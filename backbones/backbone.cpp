#include "backbones/backbone.h"

#include <algorithm>

#include "engine/core/error.h"

namespace dlm {

void ForwardBatch::clear() {
  offsets.assign(1, 0);
  token_ids.clear();
  positions.clear();
  logit_rows.clear();
  caches.clear();
}

void ForwardBatch::add_sequence(const std::vector<int32_t>& ids, int32_t first_position) {
  token_ids.insert(token_ids.end(), ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i) positions.push_back(first_position + static_cast<int32_t>(i));
  offsets.push_back(static_cast<int32_t>(token_ids.size()));
}

void ForwardBatch::add_sequence(const std::vector<int32_t>& ids, const std::vector<int32_t>& row_positions) {
  DLM_CHECK(ids.size() == row_positions.size(), "sequence of {} tokens given {} positions", ids.size(),
            row_positions.size());
  token_ids.insert(token_ids.end(), ids.begin(), ids.end());
  positions.insert(positions.end(), row_positions.begin(), row_positions.end());
  offsets.push_back(static_cast<int32_t>(token_ids.size()));
}

namespace {

const char* policy_name(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::None:
      return "none";
    case CachePolicy::Read:
      return "read";
    case CachePolicy::Commit:
      return "commit";
    case CachePolicy::Replace:
      return "replace";
  }
  return "?";
}

// The positions one sequence's rows may hold under its cache policy (see CachePolicy).
void validate_cache_use(const ForwardBatch& batch, int64_t sequence, std::vector<int32_t>& scratch) {
  const CacheUse& use = batch.caches[static_cast<size_t>(sequence)];
  if (use.policy == CachePolicy::None) return;
  DLM_CHECK(use.cache != nullptr, "sequence {} has cache policy {} but no cache", sequence,
            policy_name(use.policy));
  const int64_t length = use.cache->length();
  scratch.assign(batch.positions.begin() + batch.offsets[static_cast<size_t>(sequence)],
                 batch.positions.begin() + batch.offsets[static_cast<size_t>(sequence) + 1]);
  std::sort(scratch.begin(), scratch.end());
  DLM_CHECK(std::adjacent_find(scratch.begin(), scratch.end()) == scratch.end(),
            "sequence {} repeats a position, which its cache would hold twice", sequence);
  if (scratch.empty()) return;
  const int64_t lowest = scratch.front();
  const int64_t highest = scratch.back();
  switch (use.policy) {
    case CachePolicy::None:
      break;
    case CachePolicy::Read:
      DLM_CHECK(lowest >= length,
                "sequence {} reads its cache of {} positions but has a row at cached position {}", sequence,
                length, lowest);
      break;
    case CachePolicy::Commit: {
      DLM_CHECK(highest < use.cache->capacity(), "sequence {} commits position {} to a cache of capacity {}",
                sequence, highest, use.cache->capacity());
      // Positions past the cached ones must be consecutive from `length`, or the cache would have a gap.
      const auto appended = std::lower_bound(scratch.begin(), scratch.end(), static_cast<int32_t>(length));
      const int64_t count = scratch.end() - appended;
      DLM_CHECK(count == 0 || highest == length + count - 1,
                "sequence {} commits positions up to {} to a cache of {} positions, leaving a gap", sequence,
                highest, length);
      break;
    }
    case CachePolicy::Replace:
      DLM_CHECK(highest < length, "sequence {} replaces position {} in a cache of only {} positions",
                sequence, highest, length);
      break;
  }
}

}  // namespace

void validate_forward_batch(const ForwardBatch& batch, int64_t vocab_size, int64_t max_positions) {
  DLM_CHECK(!batch.offsets.empty() && batch.offsets.front() == 0, "forward batch offsets must start at 0");
  for (size_t b = 1; b < batch.offsets.size(); ++b) {
    DLM_CHECK(batch.offsets[b - 1] <= batch.offsets[b], "forward batch offsets decrease at sequence {}",
              b - 1);
  }
  DLM_CHECK(batch.offsets.back() == batch.tokens(), "forward batch offsets end at {}, but it has {} tokens",
            batch.offsets.back(), batch.tokens());
  DLM_CHECK(batch.positions.size() == batch.token_ids.size(), "forward batch has {} positions for {} tokens",
            batch.positions.size(), batch.token_ids.size());
  for (size_t i = 0; i < batch.token_ids.size(); ++i) {
    int32_t id = batch.token_ids[i];
    if (id < 0 || id >= vocab_size)
      fail_input("token id {} at row {} is outside the vocabulary of {}", id, i, vocab_size);
    int32_t position = batch.positions[i];
    if (position < 0 || position >= max_positions) {
      fail_input("position {} at row {} is outside the model's context of {} positions", position, i,
                 max_positions);
    }
  }
  for (int32_t row : batch.logit_rows) {
    DLM_CHECK(row >= 0 && row < batch.tokens(), "logit row {} outside the batch of {} tokens", row,
              batch.tokens());
  }
  const Visibility& visibility = batch.visibility;
  DLM_CHECK(visibility.kind != VisibilityKind::BlockCausal || visibility.block_size > 0,
            "block-causal visibility needs a positive block size, got {}", visibility.block_size);
  DLM_CHECK(visibility.kind != VisibilityKind::SlidingWindow || visibility.window > 0,
            "sliding-window visibility needs a positive window, got {}", visibility.window);

  if (batch.caches.empty()) return;
  DLM_CHECK(static_cast<int64_t>(batch.caches.size()) == batch.sequences(),
            "forward batch has {} cache uses for {} sequences", batch.caches.size(), batch.sequences());
  std::vector<int32_t> scratch;
  std::vector<const SequenceCache*> seen;
  for (int64_t b = 0; b < batch.sequences(); ++b) {
    validate_cache_use(batch, b, scratch);
    const SequenceCache* cache = batch.caches[static_cast<size_t>(b)].cache;
    if (cache == nullptr || batch.caches[static_cast<size_t>(b)].policy == CachePolicy::None) continue;
    DLM_CHECK(std::find(seen.begin(), seen.end(), cache) == seen.end(),
              "sequence {} uses a cache another sequence of the batch also uses", b);
    seen.push_back(cache);
  }
}

}  // namespace dlm
