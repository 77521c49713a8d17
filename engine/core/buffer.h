#pragma once
// Buffer: RAII owner of a block of memory on one device. Tensors are views into buffers.
#include <cstddef>
#include <functional>
#include <vector>

#include "engine/core/tensor.h"

namespace dlm {

class Buffer {
 public:
  using Release = std::function<void(void*)>;

  Buffer() = default;
  Buffer(void* data, size_t bytes, Device device, Release release);
  static Buffer host(size_t bytes);  // 64-byte aligned, uninitialized
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  Tensor view(DType dtype, Shape shape, size_t byte_offset = 0) const;  // checks the range fits

 private:
  void reset();

  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  Release release_;
};

// A host tensor together with its storage: for tests, tools and small host-side state.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, Shape shape);
  template <class T>
  static HostTensor from(Shape shape, const std::vector<T>& values) {
    HostTensor out(DTypeOf<T>::value, shape);
    DLM_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "{} values for shape {}", values.size(),
              shape.str());
    std::copy(values.begin(), values.end(), out.tensor_.data_as<T>());
    return out;
  }

  const Tensor& tensor() const { return tensor_; }
  operator const Tensor&() const { return tensor_; }
  template <class T>
  T* data() const {
    return tensor_.data_as<T>();
  }
  template <class T>
  std::vector<T> to_vector() const {
    const T* begin = tensor_.data_as<T>();
    return std::vector<T>(begin, begin + tensor_.numel());
  }

 private:
  Buffer buffer_;
  Tensor tensor_;
};

}  // namespace dlm
