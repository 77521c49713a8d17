#include "engine/ops/embedding.h"

#include "engine/ops/check.h"

namespace dlm::ops {

// table f32/bf16/f16 [V,D]; ids i32/i64 [N]; out [N,D] an activation (f32, or bf16 where the backend computes
// in it). An id outside [0, V) is an Error naming it.
void embedding(Backend& backend, const Tensor& table, const Tensor& ids, const Tensor& out) {
  constexpr std::string_view kOp = "embedding";
  check_operand(kOp, "table", table, backend, {DType::F32, DType::BF16, DType::F16});
  check_operand(kOp, "ids", ids, backend, {DType::I32, DType::I64});
  check_activation(kOp, "out", out, backend);
  check_rank(kOp, "table", table, 2);
  check_rank(kOp, "ids", ids, 1);
  check_shape(kOp, "out", out, Shape{ids.dim(0), table.dim(1)});
  check_disjoint(kOp, "out", out, "table", table);
  check_disjoint(kOp, "out", out, "ids", ids);
  backend.embedding(table, ids, out);
}

}  // namespace dlm::ops
