#include "engine/core/buffer.h"

#include <cstdlib>
#include <new>

namespace dlm {

Buffer::Buffer(void* data, size_t bytes, Device device, Release release)
    : data_(data), bytes_(bytes), device_(device), release_(std::move(release)) {}

Buffer Buffer::host(size_t bytes) {
  constexpr size_t kAlignment = 64;
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (data == nullptr) throw std::bad_alloc();
  return Buffer(data, bytes, Device{}, [](void* p) { std::free(p); });
}

Buffer::~Buffer() {
  reset();
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(other.data_), bytes_(other.bytes_), device_(other.device_), release_(std::move(other.release_)) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    bytes_ = other.bytes_;
    device_ = other.device_;
    release_ = std::move(other.release_);
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void Buffer::reset() {
  if (data_ != nullptr && release_) release_(data_);
  data_ = nullptr;
  bytes_ = 0;
}

Tensor Buffer::view(DType dtype, Shape shape, size_t byte_offset) const {
  size_t needed = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  DLM_CHECK(byte_offset + needed <= bytes_, "view {}{} at offset {} exceeds buffer of {} bytes",
            dtype_name(dtype), shape.str(), byte_offset, bytes_);
  return Tensor(static_cast<char*>(data_) + byte_offset, dtype, shape, device_);
}

HostTensor::HostTensor(DType dtype, Shape shape)
    : buffer_(Buffer::host(static_cast<size_t>(shape.numel()) * dtype_size(dtype))),
      tensor_(buffer_.view(dtype, shape)) {}

}  // namespace dlm
