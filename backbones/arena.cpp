#include "backbones/arena.h"

#include <algorithm>

namespace dlm {

namespace {
constexpr size_t kAlignment = 64;  // a cache line; also enough for vector loads on every backend
}

Tensor ArenaCarver::take(DType dtype, Shape shape) {
  size_t offset = used_;
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  used_ += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  return Tensor(base_ == nullptr ? nullptr : base_ + offset, dtype, shape, device_);
}

void Arena::reserve(size_t bytes) {
  if (buffer_.data() != nullptr && bytes <= buffer_.bytes()) return;
  // A quarter more than asked when growing: a cache's keys grow with every step (AR, dual cache), and each
  // reallocation waits for the device.
  const size_t grown = buffer_.data() == nullptr ? bytes : std::max(bytes, buffer_.bytes() / 4 * 5);
  buffer_ = Buffer();  // release first: the old and the new buffer need not coexist
  buffer_ = backend_.allocate(grown);
}

}  // namespace dlm
