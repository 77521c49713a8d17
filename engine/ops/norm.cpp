#include "engine/ops/norm.h"

#include <string_view>
#include <utility>

#include "engine/ops/check.h"

namespace dlm::ops {

namespace {

// Shared by both norms: x an activation (f32, or bf16 where the backend computes in it) of any rank >= 1
// normalized over its last axis D; weight (and bias) f32/bf16/f16 [D]; out shaped like x in x's dtype, and it
// may be x itself.
void check_norm_operands(std::string_view op, Backend& backend, const Tensor& x, const Tensor& weight,
                         const Tensor& out, std::string_view out_arg = "out") {
  check_activation(op, "x", x, backend);
  check_operand(op, "weight", weight, backend, {DType::F32, DType::BF16, DType::F16});
  check_activation(op, out_arg, out, backend);
  check_same_dtype(op, out_arg, out, "x", x);
  DLM_CHECK(x.rank() >= 1, "{}: x must have rank >= 1, got {}", op, x.describe());
  check_shape(op, "weight", weight, Shape{x.dim(-1)});
  check_shape(op, out_arg, out, x.shape());
}

// An output of a row-wise op may be an input itself, but must not otherwise overlap it.
void check_same_or_disjoint(std::string_view op, std::string_view out_arg, const Tensor& out,
                            std::string_view in_arg, const Tensor& in) {
  if (out.data() != in.data()) check_disjoint(op, out_arg, out, in_arg, in);
}

}  // namespace

// Plain: x / rms(x) * w (Llama, Qwen); OnePlus: x / rms(x) * (1 + w) (Gemma). rms = sqrt(mean(x^2) + eps).
void rms_norm(Backend& backend, const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
              const Tensor& out) {
  check_norm_operands("rms_norm", backend, x, weight, out);
  backend.rms_norm(x, weight, eps, mode, out);
}

// (x - mean) / sqrt(var + eps) * w (+ b), with the biased variance, as torch.nn.LayerNorm.
void layer_norm(Backend& backend, const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                float eps, const Tensor& out) {
  constexpr std::string_view kOp = "layer_norm";
  check_norm_operands(kOp, backend, x, weight, out);
  if (bias) {
    check_operand(kOp, "bias", *bias, backend, {DType::F32, DType::BF16, DType::F16});
    check_shape(kOp, "bias", *bias, Shape{x.dim(-1)});
  }
  backend.layer_norm(x, weight, bias, eps, out);
}

// sum_out = x + residual (rounded to the activation dtype), norm_out = rms_norm(sum_out); x, residual and
// both outputs share one shape and dtype.
void add_rms_norm(Backend& backend, const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                  NormWeight mode, const Tensor& sum_out, const Tensor& norm_out) {
  constexpr std::string_view kOp = "add_rms_norm";
  check_norm_operands(kOp, backend, x, weight, sum_out, "sum_out");
  check_norm_operands(kOp, backend, x, weight, norm_out, "norm_out");
  check_activation(kOp, "residual", residual, backend);
  check_same_dtype(kOp, "residual", residual, "x", x);
  check_shape(kOp, "residual", residual, x.shape());
  check_disjoint(kOp, "norm_out", norm_out, "sum_out", sum_out);
  for (const auto& [out_arg, out] : {std::pair<std::string_view, const Tensor&>{"sum_out", sum_out},
                                     std::pair<std::string_view, const Tensor&>{"norm_out", norm_out}}) {
    check_same_or_disjoint(kOp, out_arg, out, "x", x);
    check_same_or_disjoint(kOp, out_arg, out, "residual", residual);
  }
  backend.add_rms_norm(x, residual, weight, eps, mode, sum_out, norm_out);
}

}  // namespace dlm::ops
