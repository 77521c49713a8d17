#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

void attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v,
               const AttentionBatch& batch, const AttentionParams& params, const Tensor& out);

}  // namespace dlm::ops
