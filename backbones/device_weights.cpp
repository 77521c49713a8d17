#include "backbones/device_weights.h"

#include <map>
#include <set>
#include <utility>

namespace dlm {

namespace {

constexpr size_t kWeightAlignment = 256;

size_t aligned(size_t bytes) {
  return (bytes + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
}

}  // namespace

Buffer upload_weights(Backend& backend, const std::vector<Tensor*>& tensors) {
  // Offsets in the device buffer, one per distinct host range.
  std::map<std::pair<const void*, size_t>, size_t> offsets;
  size_t total = 0;
  for (const Tensor* t : tensors) {
    DLM_CHECK(t->device().kind == DeviceKind::Cpu && t->is_contiguous(),
              "weights to upload must be contiguous host tensors, got {}", t->describe());
    const auto [it, added] = offsets.try_emplace({t->data(), t->nbytes()}, total);
    if (added) total += aligned(t->nbytes());
  }
  Buffer buffer = backend.allocate(total);
  std::set<std::pair<const void*, size_t>> copied;
  for (Tensor* t : tensors) {
    const std::pair<const void*, size_t> key{t->data(), t->nbytes()};
    const Tensor copy = buffer.view(t->dtype(), t->shape(), offsets.at(key));
    if (copied.insert(key).second) backend.copy(*t, copy);
    *t = copy;
  }
  return buffer;
}

}  // namespace dlm
