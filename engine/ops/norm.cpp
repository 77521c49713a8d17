#include "engine/ops/norm.h"

#include "engine/ops/check.h"

namespace dlm::ops {

namespace {

// Shared by both norms: x an activation (f32, or bf16 where the backend computes in it) of any rank >= 1
// normalized over its last axis D; weight (and bias) f32/bf16/f16 [D]; out shaped like x in x's dtype, and it
// may be x itself.
void check_norm_operands(std::string_view op, Backend& backend, const Tensor& x, const Tensor& weight,
                         const Tensor& out) {
  check_activation(op, "x", x, backend);
  check_operand(op, "weight", weight, backend, {DType::F32, DType::BF16, DType::F16});
  check_activation(op, "out", out, backend);
  check_same_dtype(op, "out", out, "x", x);
  DLM_CHECK(x.rank() >= 1, "{}: x must have rank >= 1, got {}", op, x.describe());
  check_shape(op, "weight", weight, Shape{x.dim(-1)});
  check_shape(op, "out", out, x.shape());
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

}  // namespace dlm::ops
