#pragma once
// The backbone contract: a backbone turns the token ids of a ragged batch into logits for the rows the
// caller asks for, and never decides anything. The sampler chooses the visibility rule and the rows.
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/op_types.h"

namespace dlm {

// One forward call, host side. Sequence b owns rows [offsets[b], offsets[b+1]) of token_ids and positions
// (no padding). positions[i] is the position of row i inside its sequence. logit_rows lists the rows whose
// logits are wanted, in the order the output rows come back.
struct ForwardBatch {
  std::vector<int32_t> offsets{0};  // [B+1], starts at 0, non-decreasing
  std::vector<int32_t> token_ids;   // [T]
  std::vector<int32_t> positions;   // [T]
  std::vector<int32_t> logit_rows;  // [N], each in [0, T)
  Visibility visibility;

  int64_t sequences() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t tokens() const { return static_cast<int64_t>(token_ids.size()); }
  void clear();  // keeps the capacity, so a decoding loop refills without allocating
  // Appends one sequence whose positions are 0..ids.size()-1.
  void add_sequence(const std::vector<int32_t>& ids);
};

// Throws InputError for a token id outside [0, vocab_size) or a position outside [0, max_positions), and
// Error for a malformed batch (offsets, lengths, logit rows, visibility parameters).
void validate_forward_batch(const ForwardBatch& batch, int64_t vocab_size, int64_t max_positions);

class Backbone {
 public:
  virtual ~Backbone() = default;

  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;  // the context length from the model's config
  // Logits f32 [N, vocab_size] on the backend's device for batch.logit_rows, in that order. The tensor is
  // valid until the next call.
  virtual Tensor forward(const ForwardBatch& batch) = 0;
};

}  // namespace dlm
