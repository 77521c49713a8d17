#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

void softmax(Backend& backend, const Tensor& x, const Tensor& out);
void log_softmax(Backend& backend, const Tensor& x, const Tensor& out);

}  // namespace dlm::ops
