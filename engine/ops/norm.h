#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"

namespace dlm::ops {

void rms_norm(Backend& backend, const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
              const Tensor& out);
void layer_norm(Backend& backend, const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                float eps, const Tensor& out);
void add_rms_norm(Backend& backend, const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                  NormWeight mode, const Tensor& sum_out, const Tensor& norm_out);

}  // namespace dlm::ops
