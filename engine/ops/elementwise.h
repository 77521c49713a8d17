#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

// b has a's shape, or is [D] and is added to every row of a [..., D]. out may alias a or b; likewise
// the other element-wise ops may write in place.
void add(Backend& backend, const Tensor& a, const Tensor& b, const Tensor& out);
void silu(Backend& backend, const Tensor& x, const Tensor& out);
void gelu(Backend& backend, const Tensor& x, GeluApproximation approximation, const Tensor& out);
void swiglu(Backend& backend, const Tensor& gate, const Tensor& up, const Tensor& out);
void geglu(Backend& backend, const Tensor& gate, const Tensor& up, GeluApproximation approximation,
           const Tensor& out);

}  // namespace dlm::ops
