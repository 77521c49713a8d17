#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <optional>

#include "engine/backend/backend.h"
#include "engine/core/buffer.h"

namespace dlm::ops {

// inv_freq[i] = theta^(-2i / rotary_dim), i < rotary_dim / 2: plain RoPE; scaled variants build their own.
HostTensor default_rope_inv_freq(double theta, int64_t rotary_dim);

void rope(Backend& backend, const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
          const RopeParams& params, const Tensor& out);

// The heads of a fused q/k/v product (Backend::rope_qkv): q and k rotated, v copied.
void rope_qkv(Backend& backend, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
              const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace dlm::ops
