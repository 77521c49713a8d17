#include "backbones/backbone.h"

namespace dlm {

void ForwardBatch::clear() {
  offsets.assign(1, 0);
  token_ids.clear();
  positions.clear();
  logit_rows.clear();
}

void ForwardBatch::add_sequence(const std::vector<int32_t>& ids) {
  token_ids.insert(token_ids.end(), ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i) positions.push_back(static_cast<int32_t>(i));
  offsets.push_back(static_cast<int32_t>(token_ids.size()));
}

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
}

}  // namespace dlm
