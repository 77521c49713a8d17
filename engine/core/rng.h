#pragma once
// Counter-based RNG (Philox4x32-10, Salmon et al. 2011). A value depends only on (key, counter), so every
// request owns a reproducible stream whatever else is in the batch, and CPU and GPU draw the same numbers.
// Plain C++17 with DLM_HOST_DEVICE so CUDA kernels can include it.
#include <cstdint>

#if defined(__CUDACC__)
#define DLM_HOST_DEVICE __host__ __device__
#else
#define DLM_HOST_DEVICE
#endif

namespace dlm {

struct Philox4x32 {
  uint32_t v[4];
};

DLM_HOST_DEVICE inline uint32_t mul_hi_u32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// counter: 128 bits (c0..c3); key: 64 bits (k0, k1).
DLM_HOST_DEVICE inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0 = mul_hi_u32(kMul0, c0), lo0 = kMul0 * c0;
    uint32_t hi1 = mul_hi_u32(kMul1, c2), lo1 = kMul1 * c2;
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// A request's stream: the seed is the key; (step, index) address one draw of 4 words.
struct RngStream {
  uint64_t seed = 0;

  DLM_HOST_DEVICE Philox4x32 draw(uint64_t step, uint64_t index) const {
    return philox4x32_10(static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                         static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32),
                         static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  }
  // Uniform in [0, 1) with 24 random bits.
  DLM_HOST_DEVICE float uniform_float(uint64_t step, uint64_t index) const {
    return static_cast<float>(draw(step, index).v[0] >> 8) * (1.0f / 16777216.0f);
  }
  // Uniform in (0, 1) with 53 random bits; never 0, so log(u) is finite (Gumbel noise).
  DLM_HOST_DEVICE double uniform_double_open(uint64_t step, uint64_t index) const {
    Philox4x32 words = draw(step, index);
    uint64_t bits = (static_cast<uint64_t>(words.v[0]) << 21) ^ (words.v[1] >> 11);
    bits &= (uint64_t{1} << 53) - 1;
    return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
  }
};

}  // namespace dlm
