#include "engine/ops/rope.h"

#include <cmath>

#include "engine/ops/check.h"

namespace dlm::ops {

// As HF's default rope init computes it in f32: 1 / (theta ** (arange(0, dim, 2).float() / dim)).
HostTensor default_rope_inv_freq(double theta, int64_t rotary_dim) {
  DLM_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, "rope: rotary_dim must be positive and even, got {}",
            rotary_dim);
  DLM_CHECK(theta > 0.0, "rope: theta must be positive, got {}", theta);
  HostTensor inv_freq(DType::F32, Shape{rotary_dim / 2});
  float* values = inv_freq.data<float>();
  const auto base = static_cast<float>(theta);
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    const auto power = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
    values[i] = 1.0f / power;
  }
  return inv_freq;
}

// x [T,H,D] an activation (f32, or bf16 where the backend computes in it), each token's [H,D] contiguous but
// tokens possibly further apart (a column block of a fused projection's output); positions i32 [T]; inv_freq
// f32 [rotary_dim/2] with rotary_dim even and in (0, D]; out [T,H,D] contiguous in x's dtype, and it may be x
// itself where x is contiguous.
void rope(Backend& backend, const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
          const RopeParams& params, const Tensor& out) {
  constexpr std::string_view kOp = "rope";
  check_activation_rows(kOp, "x", x, backend);
  check_operand(kOp, "positions", positions, backend, {DType::I32});
  check_operand(kOp, "inv_freq", inv_freq, backend, {DType::F32});
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "out", out, "x", x);
  check_rank(kOp, "x", x, 3);
  const int64_t head_dim = x.dim(2);
  DLM_CHECK(params.rotary_dim > 0 && params.rotary_dim % 2 == 0 && params.rotary_dim <= head_dim,
            "rope: rotary_dim must be even and in (0, {}] for x {}, got {}", head_dim, x.describe(),
            params.rotary_dim);
  check_shape(kOp, "positions", positions, Shape{x.dim(0)});
  check_shape(kOp, "inv_freq", inv_freq, Shape{params.rotary_dim / 2});
  check_shape(kOp, "out", out, x.shape());
  if (!x.is_contiguous()) check_disjoint(kOp, "out", out, "x", x);
  backend.rope(x, positions, inv_freq, params, out);
}

}  // namespace dlm::ops
