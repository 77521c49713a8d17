#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

void argmax(Backend& backend, const Tensor& logits, const Tensor& out);
void top_k(Backend& backend, const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices);
void vocab_stats(Backend& backend, const Tensor& logits, const VocabStats& out);
// One rule per row of logits; Error naming the row and the field for a rule the kernel cannot apply (a
// guidance row outside the logits or equal to its own, an id outside the vocabulary, a draw or division
// without a positive finite temperature, score-only suppressions with a Categorical draw, a filter setting
// out of range, a penalty that is not positive and finite or whose ids are not an ascending slice of
// penalized_ids inside the vocabulary, guidance from or of a penalized or divided row). Penalized and divided
// rows change in place.
void predict_tokens(Backend& backend, const Tensor& logits, std::span<const TokenRule> rules,
                    std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out);

}  // namespace dlm::ops
