#pragma once
// Weights resident on a device backend: one buffer holding a copy of every weight, the weight tensors
// rewritten to view their copies. On the CPU backend weights stay zero-copy views into the memory map and
// nothing here is used.
#include <vector>

#include "engine/backend/backend.h"
#include "engine/core/buffer.h"

namespace dlm {

// Copies each host tensor into one buffer on the backend's device, in its own dtype, and points the tensor
// at its copy. Tensors viewing the same host bytes (tied embeddings) share one copy, so they stay aliases.
// Each copy starts on a 256-byte boundary, the widest alignment the device's matrix library asks for.
Buffer upload_weights(Backend& backend, const std::vector<Tensor*>& tensors);

}  // namespace dlm
