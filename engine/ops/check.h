#pragma once
// Shared validation for op front-ends: each failure names the op, the argument and what was expected.
#include <initializer_list>
#include <string_view>

#include "engine/backend/backend.h"

namespace dlm::ops {

void check_device(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend);
void check_contiguous(std::string_view op, std::string_view arg, const Tensor& t);
void check_rank(std::string_view op, std::string_view arg, const Tensor& t, int rank);
void check_dtype(std::string_view op, std::string_view arg, const Tensor& t,
                 std::initializer_list<DType> allowed);
void check_shape(std::string_view op, std::string_view arg, const Tensor& t, const Shape& expected);
// Outputs that the op reads from while writing (linear, cast, embedding, attention) must not share memory
// with that input.
void check_disjoint(std::string_view op, std::string_view out_arg, const Tensor& out, std::string_view in_arg,
                    const Tensor& in);
// The common preamble: on the backend's device, contiguous, one of the dtypes.
void check_operand(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend,
                   std::initializer_list<DType> allowed);
// An activation operand: check_operand with f32, or bf16 where the backend supports bf16 activations (an
// Error naming the backend otherwise).
void check_activation(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend);
// As check_activation, but a view whose slices along axis 0 are each contiguous (Tensor::slices_contiguous:
// a column block of a wider matrix, such as one part of a fused projection's output) passes too.
void check_activation_rows(std::string_view op, std::string_view arg, const Tensor& t,
                           const Backend& backend);
// Operands an op reads and writes in one dtype.
void check_same_dtype(std::string_view op, std::string_view arg, const Tensor& t, std::string_view like_arg,
                      const Tensor& like);

}  // namespace dlm::ops
