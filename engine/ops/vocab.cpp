#include "engine/ops/vocab.h"

#include <cstdint>
#include <limits>

#include "engine/ops/check.h"

namespace dlm::ops {
namespace {

// logits [N, V] f32 with 1 <= V, and V small enough for i32 indices. Returns N.
int64_t check_logits(std::string_view op, const Backend& backend, const Tensor& logits) {
  check_operand(op, "logits", logits, backend, {DType::F32});
  check_rank(op, "logits", logits, 2);
  const int64_t vocab = logits.dim(1);
  DLM_CHECK(vocab >= 1 && vocab <= std::numeric_limits<int32_t>::max(),
            "{}: logits must have a vocabulary of 1 to 2^31-1 entries, got {}", op, logits.describe());
  return logits.dim(0);
}

}  // namespace

void argmax(Backend& backend, const Tensor& logits, const Tensor& out) {
  constexpr std::string_view kOp = "argmax";
  const int64_t rows = check_logits(kOp, backend, logits);
  check_operand(kOp, "out", out, backend, {DType::I32});
  check_shape(kOp, "out", out, Shape{rows});
  backend.argmax(logits, out);
}

void top_k(Backend& backend, const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) {
  constexpr std::string_view kOp = "top_k";
  const int64_t rows = check_logits(kOp, backend, logits);
  DLM_CHECK(k >= 1 && k <= logits.dim(1), "{}: k must be in [1, {}] (the vocabulary), got {}", kOp,
            logits.dim(1), k);
  check_operand(kOp, "values", values, backend, {DType::F32});
  check_operand(kOp, "indices", indices, backend, {DType::I32});
  check_shape(kOp, "values", values, Shape{rows, k});
  check_shape(kOp, "indices", indices, Shape{rows, k});
  backend.top_k(logits, k, values, indices);
}

void vocab_stats(Backend& backend, const Tensor& logits, const VocabStats& out) {
  constexpr std::string_view kOp = "vocab_stats";
  const int64_t rows = check_logits(kOp, backend, logits);
  check_operand(kOp, "argmax", out.argmax, backend, {DType::I32});
  check_operand(kOp, "max_prob", out.max_prob, backend, {DType::F32});
  check_operand(kOp, "entropy", out.entropy, backend, {DType::F32});
  check_operand(kOp, "margin", out.margin, backend, {DType::F32});
  check_shape(kOp, "argmax", out.argmax, Shape{rows});
  check_shape(kOp, "max_prob", out.max_prob, Shape{rows});
  check_shape(kOp, "entropy", out.entropy, Shape{rows});
  check_shape(kOp, "margin", out.margin, Shape{rows});
  backend.vocab_stats(logits, out);
}

}  // namespace dlm::ops
