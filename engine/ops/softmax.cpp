#include "engine/ops/softmax.h"

#include "engine/ops/check.h"

namespace dlm::ops {

namespace {

// x f32 of rank >= 1, reduced over its last axis; out f32 shaped like x, and it may be x itself.
void check_softmax_operands(std::string_view op, Backend& backend, const Tensor& x, const Tensor& out) {
  check_operand(op, "x", x, backend, {DType::F32});
  check_operand(op, "out", out, backend, {DType::F32});
  DLM_CHECK(x.rank() >= 1, "{}: x must have rank >= 1, got {}", op, x.describe());
  check_shape(op, "out", out, x.shape());
}

}  // namespace

// Numerically stable (max subtracted). As in torch, a row containing NaN or +inf, or holding only -inf,
// gives NaN throughout.
void softmax(Backend& backend, const Tensor& x, const Tensor& out) {
  check_softmax_operands("softmax", backend, x, out);
  backend.softmax(x, out);
}

void log_softmax(Backend& backend, const Tensor& x, const Tensor& out) {
  check_softmax_operands("log_softmax", backend, x, out);
  backend.log_softmax(x, out);
}

}  // namespace dlm::ops
