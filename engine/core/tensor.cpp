#include "engine/core/tensor.h"

#include <fmt/format.h>

#include <cstring>

namespace dlm {

std::string device_name(Device device) {
  return device.kind == DeviceKind::Cpu ? std::string("cpu") : fmt::format("cuda:{}", device.index);
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t dim : dims) push_back(dim);
}

void Shape::push_back(int64_t dim) {
  DLM_CHECK(rank_ < kMaxRank, "shape rank exceeds {}", kMaxRank);
  dims_[rank_++] = dim;
}

int64_t Shape::numel() const {
  int64_t count = 1;
  for (int axis = 0; axis < rank_; ++axis) count *= dims_[axis];
  return count;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int axis = 0; axis < rank_; ++axis) {
    if (dims_[axis] != other.dims_[axis]) return false;
  }
  return true;
}

std::string Shape::str() const {
  return fmt::format("[{}]", fmt::join(begin(), end(), ","));
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides = shape;
  int64_t step = 1;
  for (int axis = shape.rank() - 1; axis >= 0; --axis) {
    strides[axis] = step;
    step *= shape[axis];
  }
  return strides;
}

Tensor::Tensor(void* data, DType dtype, Shape shape, Device device)
    : Tensor(data, dtype, shape, contiguous_strides(shape), device) {}

Tensor::Tensor(void* data, DType dtype, Shape shape, Shape strides, Device device)
    : data_(data), dtype_(dtype), shape_(shape), strides_(strides), device_(device) {
  DLM_CHECK(shape.rank() == strides.rank(), "shape {} and strides {} differ in rank", shape.str(),
            strides.str());
  for (int64_t dim : shape) DLM_CHECK(dim >= 0, "negative dimension in shape {}", shape.str());
}

int Tensor::normalize_axis(int axis) const {
  int normalized = axis < 0 ? axis + rank() : axis;
  DLM_CHECK(normalized >= 0 && normalized < rank(), "axis {} out of range for {}", axis, describe());
  return normalized;
}

int64_t Tensor::dim(int axis) const {
  return shape_[normalize_axis(axis)];
}
int64_t Tensor::stride(int axis) const {
  return strides_[normalize_axis(axis)];
}

bool Tensor::is_contiguous() const {
  int64_t step = 1;
  for (int axis = rank() - 1; axis >= 0; --axis) {
    if (shape_[axis] != 1 && strides_[axis] != step) return false;
    step *= shape_[axis];
  }
  return true;
}

int64_t Tensor::row_stride() const {
  if (is_contiguous()) return rank() == 0 ? 1 : dim(-1);
  return stride(0);
}

bool Tensor::slices_contiguous() const {
  if (rank() == 0) return false;
  int64_t step = 1;
  for (int axis = rank() - 1; axis >= 1; --axis) {
    if (shape_[axis] != 1 && strides_[axis] != step) return false;
    step *= shape_[axis];
  }
  return shape_[0] <= 1 || strides_[0] >= step;
}

Tensor Tensor::reshape(Shape shape) const {
  DLM_CHECK(is_contiguous(), "reshape of non-contiguous tensor {}", describe());
  DLM_CHECK(shape.numel() == numel(), "cannot reshape {} to {}", describe(), shape.str());
  return Tensor(data_, dtype_, shape, device_);
}

Tensor Tensor::slice(int axis, int64_t begin, int64_t end) const {
  int a = normalize_axis(axis);
  DLM_CHECK(0 <= begin && begin <= end && end <= shape_[a], "slice [{}, {}) of axis {} out of range for {}",
            begin, end, axis, describe());
  Shape shape = shape_;
  shape[a] = end - begin;
  auto* base = static_cast<char*>(data_) + begin * strides_[a] * static_cast<int64_t>(dtype_size(dtype_));
  return Tensor(base, dtype_, shape, strides_, device_);
}

Tensor Tensor::transpose(int axis_a, int axis_b) const {
  int a = normalize_axis(axis_a);
  int b = normalize_axis(axis_b);
  Shape shape = shape_;
  Shape strides = strides_;
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return Tensor(data_, dtype_, shape, strides, device_);
}

std::string Tensor::describe() const {
  return fmt::format("{}{} {}", dtype_name(dtype_), shape_.str(), device_name(device_));
}

Tensor join_adjacent(const Tensor& first, const Tensor& second) {
  if (first.empty() || second.empty() || first.rank() == 0 || first.rank() != second.rank()) return {};
  if (first.dtype() != second.dtype() || first.device() != second.device()) return {};
  if (!first.is_contiguous() || !second.is_contiguous()) return {};
  for (int axis = 1; axis < first.rank(); ++axis) {
    if (first.dim(axis) != second.dim(axis)) return {};
  }
  if (static_cast<const char*>(first.data()) + first.nbytes() != second.data()) return {};
  Shape shape = first.shape();
  shape[0] += second.dim(0);
  return Tensor(first.data(), first.dtype(), shape, first.device());
}

void copy_host(const Tensor& src, const Tensor& dst) {
  if (src.nbytes() == 0) return;
  if (src.is_contiguous()) {
    std::memmove(dst.data(), src.data(), src.nbytes());
    return;
  }
  const size_t slice = src.nbytes() / static_cast<size_t>(src.dim(0));
  const size_t pitch = static_cast<size_t>(src.stride(0)) * dtype_size(src.dtype());
  for (int64_t i = 0; i < src.dim(0); ++i) {
    std::memmove(static_cast<char*>(dst.data()) + static_cast<size_t>(i) * slice,
                 static_cast<const char*>(src.data()) + static_cast<size_t>(i) * pitch, slice);
  }
}

}  // namespace dlm
