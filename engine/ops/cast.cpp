#include "engine/ops/cast.h"

#include "engine/ops/check.h"

namespace dlm::ops {

// Any of f32, bf16, f16 to any of them; narrowing rounds to nearest even. out must not overlap x.
void cast(Backend& backend, const Tensor& x, const Tensor& out) {
  constexpr std::string_view kOp = "cast";
  check_operand(kOp, "x", x, backend, {DType::F32, DType::BF16, DType::F16});
  check_operand(kOp, "out", out, backend, {DType::F32, DType::BF16, DType::F16});
  check_shape(kOp, "out", out, x.shape());
  check_disjoint(kOp, "out", out, "x", x);
  backend.cast(x, out);
}

}  // namespace dlm::ops
