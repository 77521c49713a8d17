#include "engine/ops/elementwise.h"

#include "engine/ops/check.h"

namespace dlm::ops {

// All operands activations of one dtype (f32, or bf16 where the backend computes in it), contiguous. Every
// output may be one of the inputs (the ops are element by element), but must not otherwise overlap them.

// out = a + b, with b shaped like a, or b [D] added to every row of a [..., D] (a bias or a shared vector).
void add(Backend& backend, const Tensor& a, const Tensor& b, const Tensor& out) {
  constexpr std::string_view kOp = "add";
  check_activation(kOp, "a", a, backend);
  check_activation(kOp, "b", b, backend);
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "b", b, "a", a);
  check_same_dtype(kOp, "out", out, "a", a);
  const bool row_broadcast = b.rank() == 1 && a.rank() >= 1 && b.dim(0) == a.dim(-1);
  DLM_CHECK(b.shape() == a.shape() || row_broadcast, "add: b must have a's shape {} or [{}], got {}",
            a.shape().str(), a.rank() >= 1 ? a.dim(-1) : 1, b.describe());
  check_shape(kOp, "out", out, a.shape());
  backend.add(a, b, out);
}

void silu(Backend& backend, const Tensor& x, const Tensor& out) {
  constexpr std::string_view kOp = "silu";
  check_activation(kOp, "x", x, backend);
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "out", out, "x", x);
  check_shape(kOp, "out", out, x.shape());
  backend.silu(x, out);
}

// Exact (erf) or tanh-approximated GELU, as torch.nn.functional.gelu(approximate="none"/"tanh").
void gelu(Backend& backend, const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  constexpr std::string_view kOp = "gelu";
  check_activation(kOp, "x", x, backend);
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "out", out, "x", x);
  check_shape(kOp, "out", out, x.shape());
  backend.gelu(x, approximation, out);
}

namespace {

// gate and up may be column blocks of one matrix (the two halves of a fused gate/up projection); out is
// contiguous, and may be gate or up only where those are contiguous too.
void check_gated(std::string_view op, Backend& backend, const Tensor& gate, const Tensor& up,
                 const Tensor& out) {
  check_activation_rows(op, "gate", gate, backend);
  check_activation_rows(op, "up", up, backend);
  for (const Tensor* t : {&gate, &up}) {
    DLM_CHECK(t->is_contiguous() || t->rank() == 2,
              "{}: a strided gate or up must have rank 2, got gate {}, up {}", op, gate.describe(),
              up.describe());
  }
  check_activation(op, "out", out, backend);
  check_same_dtype(op, "up", up, "gate", gate);
  check_same_dtype(op, "out", out, "gate", gate);
  check_shape(op, "up", up, gate.shape());
  check_shape(op, "out", out, gate.shape());
  if (!gate.is_contiguous()) check_disjoint(op, "out", out, "gate", gate);
  if (!up.is_contiguous()) check_disjoint(op, "out", out, "up", up);
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
