#include "backbones/kv_cache.h"

#include "engine/core/error.h"

namespace dlm {

KvCache::KvCache(Backend& backend, const void* owner, int64_t layers, int64_t capacity, int64_t kv_heads,
                 int64_t head_dim, DType dtype)
    : owner_(owner),
      layers_(layers),
      capacity_(capacity),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      dtype_(dtype) {
  DLM_CHECK(capacity >= 0, "cache capacity must not be negative, got {}", capacity);
  buffer_ =
      backend.allocate(static_cast<size_t>(bytes_per_position(layers, kv_heads, head_dim, dtype) * capacity));
}

void KvCache::truncate(int64_t length) {
  DLM_CHECK(length >= 0 && length <= length_, "cannot truncate a cache of {} positions to {}", length_,
            length);
  length_ = length;
}

void KvCache::set_length(int64_t length) {
  DLM_CHECK(length >= 0 && length <= capacity_, "cache length {} outside its capacity {}", length, capacity_);
  length_ = length;
}

int64_t KvCache::bytes_per_position(int64_t layers, int64_t kv_heads, int64_t head_dim, DType dtype) {
  return layers * 2 * kv_heads * head_dim * static_cast<int64_t>(dtype_size(dtype));
}

Tensor KvCache::slab(int64_t layer, int which) const {
  DLM_CHECK(layer >= 0 && layer < layers_, "cache layer {} outside [0, {})", layer, layers_);
  const int64_t bytes = capacity_ * kv_heads_ * head_dim_ * static_cast<int64_t>(dtype_size(dtype_));
  char* base = static_cast<char*>(buffer_.data()) + (2 * layer + which) * bytes;
  return Tensor(base, dtype_, Shape{capacity_, kv_heads_, head_dim_}, buffer_.device());
}

}  // namespace dlm
