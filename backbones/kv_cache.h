#pragma once
// The attention cache of one request: for every layer, keys (after RoPE) and values of positions
// [0, capacity), in one backend buffer, in the backbone's activation dtype. Keys are stored rotated, so a
// read never re-applies RoPE.
#include <cstdint>

#include "backbones/sequence_cache.h"
#include "engine/backend/backend.h"
#include "engine/core/buffer.h"

namespace dlm {

class KvCache final : public SequenceCache {
 public:
  // `owner` identifies the backbone that made it, so a cache cannot be handed to another model.
  KvCache(Backend& backend, const void* owner, int64_t layers, int64_t capacity, int64_t kv_heads,
          int64_t head_dim, DType dtype);

  int64_t length() const override { return length_; }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t length) override;

  const void* owner() const { return owner_; }
  int64_t layers() const { return layers_; }
  Tensor keys(int64_t layer) const { return slab(layer, 0); }    // [capacity, kv_heads, head_dim]
  Tensor values(int64_t layer) const { return slab(layer, 1); }  // [capacity, kv_heads, head_dim]
  void set_length(int64_t length);  // after a commit; must not exceed the capacity

  // Bytes one cached position takes: every layer's keys and values.
  static int64_t bytes_per_position(int64_t layers, int64_t kv_heads, int64_t head_dim, DType dtype);

 private:
  Tensor slab(int64_t layer, int which) const;

  const void* owner_;
  int64_t layers_, capacity_, kv_heads_, head_dim_;
  DType dtype_;
  int64_t length_ = 0;
  Buffer buffer_;
};

}  // namespace dlm
