#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

void argmax(Backend& backend, const Tensor& logits, const Tensor& out);
void top_k(Backend& backend, const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices);
void vocab_stats(Backend& backend, const Tensor& logits, const VocabStats& out);

}  // namespace dlm::ops
