#include "engine/ops/elementwise.h"

#include "engine/ops/check.h"

namespace dlm::ops {

// All operands f32 and contiguous. Every output may be one of the inputs (the ops are element by element),
// but must not otherwise overlap them.

// out = a + b, with b shaped like a, or b [D] added to every row of a [..., D] (a bias or a shared vector).
void add(Backend& backend, const Tensor& a, const Tensor& b, const Tensor& out) {
  constexpr std::string_view kOp = "add";
  check_operand(kOp, "a", a, backend, {DType::F32});
  check_operand(kOp, "b", b, backend, {DType::F32});
  check_operand(kOp, "out", out, backend, {DType::F32});
  const bool row_broadcast = b.rank() == 1 && a.rank() >= 1 && b.dim(0) == a.dim(-1);
  DLM_CHECK(b.shape() == a.shape() || row_broadcast, "add: b must have a's shape {} or [{}], got {}",
            a.shape().str(), a.rank() >= 1 ? a.dim(-1) : 1, b.describe());
  check_shape(kOp, "out", out, a.shape());
  backend.add(a, b, out);
}

void silu(Backend& backend, const Tensor& x, const Tensor& out) {
  constexpr std::string_view kOp = "silu";
  check_operand(kOp, "x", x, backend, {DType::F32});
  check_operand(kOp, "out", out, backend, {DType::F32});
  check_shape(kOp, "out", out, x.shape());
  backend.silu(x, out);
}

// Exact (erf) or tanh-approximated GELU, as torch.nn.functional.gelu(approximate="none"/"tanh").
void gelu(Backend& backend, const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  constexpr std::string_view kOp = "gelu";
  check_operand(kOp, "x", x, backend, {DType::F32});
  check_operand(kOp, "out", out, backend, {DType::F32});
  check_shape(kOp, "out", out, x.shape());
  backend.gelu(x, approximation, out);
}

namespace {

void check_gated(std::string_view op, Backend& backend, const Tensor& gate, const Tensor& up,
                 const Tensor& out) {
  check_operand(op, "gate", gate, backend, {DType::F32});
  check_operand(op, "up", up, backend, {DType::F32});
  check_operand(op, "out", out, backend, {DType::F32});
  check_shape(op, "up", up, gate.shape());
  check_shape(op, "out", out, gate.shape());
}

}  // namespace

// out = silu(gate) * up.
void swiglu(Backend& backend, const Tensor& gate, const Tensor& up, const Tensor& out) {
  check_gated("swiglu", backend, gate, up, out);
  backend.swiglu(gate, up, out);
}

// out = gelu(gate) * up.
void geglu(Backend& backend, const Tensor& gate, const Tensor& up, GeluApproximation approximation,
           const Tensor& out) {
  check_gated("geglu", backend, gate, up, out);
  backend.geglu(gate, up, approximation, out);
}

}  // namespace dlm::ops
