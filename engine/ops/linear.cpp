#include "engine/ops/linear.h"

#include "engine/ops/check.h"

namespace dlm::ops {

// x [M,K] and out [M,N] activations (f32, or bf16 where the backend computes in it), out not overlapping x;
// weight f32/bf16/f16 [N,K]; bias f32/bf16/f16 [N].
void linear(Backend& backend, const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
            const Tensor& out) {
  constexpr std::string_view kOp = "linear";
  check_activation(kOp, "x", x, backend);
  check_operand(kOp, "weight", weight, backend, {DType::F32, DType::BF16, DType::F16});
  check_activation(kOp, "out", out, backend);
  check_rank(kOp, "x", x, 2);
  check_rank(kOp, "weight", weight, 2);
  DLM_CHECK(weight.dim(1) == x.dim(1), "linear: weight {} must have {} input features to match x {}",
            weight.describe(), x.dim(1), x.describe());
  if (bias) {
    check_operand(kOp, "bias", *bias, backend, {DType::F32, DType::BF16, DType::F16});
    check_shape(kOp, "bias", *bias, Shape{weight.dim(0)});
  }
  check_shape(kOp, "out", out, Shape{x.dim(0), weight.dim(0)});
  check_disjoint(kOp, "out", out, "x", x);
  backend.linear(x, weight, bias, out);
}

}  // namespace dlm::ops
