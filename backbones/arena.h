#pragma once
// Activation memory for one call shape: a single backend buffer carved into tensors. It reallocates only
// when a call needs more bytes than it holds, so a decoding loop of one shape allocates once and the layers
// of a forward never allocate.
#include <cstddef>

#include "engine/backend/backend.h"

namespace dlm {

// Hands out aligned, non-overlapping tensors from a base address; with a null base it only measures.
class ArenaCarver {
 public:
  explicit ArenaCarver(void* base, Device device) : base_(static_cast<char*>(base)), device_(device) {}

  Tensor take(DType dtype, Shape shape);
  size_t bytes() const { return used_; }

 private:
  char* base_;
  Device device_;
  size_t used_ = 0;
};

class Arena {
 public:
  explicit Arena(Backend& backend) : backend_(backend) {}

  // Runs layout(carver) once to measure, grows the buffer if needed, and again to carve; returns what the
  // second run returns. Tensors from an earlier build are invalid afterwards.
  template <class Layout>
  auto build(Layout&& layout) {
    ArenaCarver measure(nullptr, backend_.device());
    layout(measure);
    reserve(measure.bytes());
    ArenaCarver carve(buffer_.data(), backend_.device());
    return layout(carve);
  }
  size_t capacity() const { return buffer_.bytes(); }

 private:
  void reserve(size_t bytes);

  Backend& backend_;
  Buffer buffer_;
};

}  // namespace dlm
