#include "engine/ops/check.h"

#include <fmt/format.h>

#include <string>

namespace dlm::ops {

void check_device(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend) {
  DLM_CHECK(!t.empty() || t.numel() == 0, "{}: {} has no data", op, arg);
  DLM_CHECK(t.device() == backend.device(), "{}: {} is on {}, the backend on {}", op, arg,
            device_name(t.device()), device_name(backend.device()));
}

void check_contiguous(std::string_view op, std::string_view arg, const Tensor& t) {
  DLM_CHECK(t.is_contiguous(), "{}: {} ({}) must be contiguous", op, arg, t.describe());
}

void check_rank(std::string_view op, std::string_view arg, const Tensor& t, int rank) {
  DLM_CHECK(t.rank() == rank, "{}: {} must have rank {}, got {}", op, arg, rank, t.describe());
}

void check_dtype(std::string_view op, std::string_view arg, const Tensor& t,
                 std::initializer_list<DType> allowed) {
  for (DType dtype : allowed) {
    if (t.dtype() == dtype) return;
  }
  std::string names;
  for (DType dtype : allowed) names += fmt::format("{}{}", names.empty() ? "" : "/", dtype_name(dtype));
  fail("{}: {} must be {}, got {}", op, arg, names, t.describe());
}

void check_shape(std::string_view op, std::string_view arg, const Tensor& t, const Shape& expected) {
  DLM_CHECK(t.shape() == expected, "{}: {} must have shape {}, got {}", op, arg, expected.str(),
            t.describe());
}

void check_disjoint(std::string_view op, std::string_view out_arg, const Tensor& out, std::string_view in_arg,
                    const Tensor& in) {
  if (out.numel() == 0 || in.numel() == 0 || out.device() != in.device()) return;
  const char* out_begin = static_cast<const char*>(out.data());
  const char* in_begin = static_cast<const char*>(in.data());
  bool overlap = out_begin < in_begin + in.nbytes() && in_begin < out_begin + out.nbytes();
  DLM_CHECK(!overlap, "{}: {} ({}) must not overlap {} ({})", op, out_arg, out.describe(), in_arg,
            in.describe());
}

void check_operand(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend,
                   std::initializer_list<DType> allowed) {
  check_device(op, arg, t, backend);
  check_contiguous(op, arg, t);
  check_dtype(op, arg, t, allowed);
}

namespace {

void check_activation_dtype(std::string_view op, std::string_view arg, const Tensor& t,
                            const Backend& backend) {
  check_dtype(op, arg, t, {DType::F32, DType::BF16});
  DLM_CHECK(t.dtype() == DType::F32 || backend.supports_bf16_activations(),
            "{}: {} is {}, but the {} backend computes activations in f32 only", op, arg, t.describe(),
            device_name(backend.device()));
}

}  // namespace

void check_activation(std::string_view op, std::string_view arg, const Tensor& t, const Backend& backend) {
  check_device(op, arg, t, backend);
  check_contiguous(op, arg, t);
  check_activation_dtype(op, arg, t, backend);
}

void check_activation_rows(std::string_view op, std::string_view arg, const Tensor& t,
                           const Backend& backend) {
  check_device(op, arg, t, backend);
  DLM_CHECK(t.is_contiguous() || t.slices_contiguous(),
            "{}: {} ({}) must be contiguous, or a view whose slices along its first axis are", op, arg,
            t.describe());
  check_activation_dtype(op, arg, t, backend);
}

void check_same_dtype(std::string_view op, std::string_view arg, const Tensor& t, std::string_view like_arg,
                      const Tensor& like) {
  DLM_CHECK(t.dtype() == like.dtype(), "{}: {} ({}) must have the dtype of {} ({})", op, arg, t.describe(),
            like_arg, like.describe());
}

}  // namespace dlm::ops
