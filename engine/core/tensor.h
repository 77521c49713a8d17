#pragma once
// Tensor: a non-owning, strided view of typed memory on one device. Ownership lives in Buffer.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace dlm {

enum class DeviceKind : uint8_t { Cpu, Cuda };

struct Device {
  DeviceKind kind = DeviceKind::Cpu;
  int index = 0;
  bool operator==(const Device&) const = default;
};
std::string device_name(Device device);  // "cpu", "cuda:0"

inline constexpr int kMaxRank = 6;

// Dimensions (or strides, in elements) of up to kMaxRank axes.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <class It>
  Shape(It begin, It end) {
    for (; begin != end; ++begin) push_back(static_cast<int64_t>(*begin));
  }

  int rank() const { return rank_; }
  int64_t operator[](int axis) const { return dims_[axis]; }
  int64_t& operator[](int axis) { return dims_[axis]; }
  void push_back(int64_t dim);
  int64_t numel() const;
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + rank_; }
  bool operator==(const Shape& other) const;
  std::string str() const;  // "[2,3]"

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

Shape contiguous_strides(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, DType dtype, Shape shape, Device device = {});  // contiguous
  Tensor(void* data, DType dtype, Shape shape, Shape strides, Device device);

  void* data() const { return data_; }
  template <class T>
  T* data_as() const {
    static_assert(sizeof(T) > 0);
    DLM_CHECK(DTypeOf<T>::value == dtype_, "tensor {} accessed as {}", describe(),
              dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(data_);
  }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int axis) const;     // negative axes count from the end
  int64_t stride(int axis) const;  // in elements
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr; }
  bool is_contiguous() const;
  // Elements from the start of one row (of the last axis) to the next: dim(-1) when contiguous, else
  // stride(0), for a rank-2 view with contiguous rows (a column block of a wider matrix).
  int64_t row_stride() const;
  // Whether each slice along axis 0 is contiguous and the slices do not overlap, stride(0) elements apart:
  // a column block of a wider matrix, its rows viewed in any shape. True for a contiguous tensor of rank
  // >= 1.
  bool slices_contiguous() const;

  Tensor reshape(Shape shape) const;                         // requires contiguity
  Tensor slice(int axis, int64_t begin, int64_t end) const;  // rows [begin, end) of one axis
  Tensor transpose(int axis_a, int axis_b) const;            // strided view
  std::string describe() const;                              // "f32[2,3] cpu"

 private:
  int normalize_axis(int axis) const;

  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  Device device_;
};

// `first` and `second` as one tensor stacked along axis 0, when second's bytes begin where first's end (both
// contiguous, one dtype and device, the same trailing dims): two weight matrices stored back to back used as
// one. An empty tensor otherwise.
Tensor join_adjacent(const Tensor& first, const Tensor& second);

// Copies host tensor src into host tensor dst (same dtype and shape; dst contiguous, src contiguous or
// slices_contiguous), slice by slice where src is strided; the ranges may overlap as with memmove.
void copy_host(const Tensor& src, const Tensor& dst);

}  // namespace dlm
