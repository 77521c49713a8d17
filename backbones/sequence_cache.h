#pragma once
// Per-request state a backbone keeps between calls: K/V for attention layers (recurrent state for linear
// layers later). The sampler owns one per request and says per call what to do with it (CachePolicy).
#include <cstdint>

namespace dlm {

class SequenceCache {
 public:
  virtual ~SequenceCache() = default;

  virtual int64_t length() const = 0;    // positions [0, length) are cached
  virtual int64_t capacity() const = 0;  // positions it can hold
  // Forgets positions >= length (Fast-dLLM's prefix cache keeps the prompt and the finished blocks).
  virtual void truncate(int64_t length) = 0;
};

}  // namespace dlm
