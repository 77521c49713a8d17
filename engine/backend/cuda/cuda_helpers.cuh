#pragma once
// Device helpers shared by the CUDA kernels (.cu files only; C++17): bit-exact copies of half.h's
// conversions, element access by dtype, the NaN-aware ranking of the vocabulary ops, block reductions and
// launch sizes.
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/core/dtype.h"

namespace dlm::cuda {

// ------------------------------------------------------------------------------------------ conversions
// Each mirrors its half.h namesake bit for bit (NaN payloads included), so both backends store the same bits.

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__device__ __forceinline__ uint16_t f32_to_bf16_bits(float value) {
  const uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

__device__ __forceinline__ float f16_bits_to_f32(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1fu) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: shift the leading 1 up to bit 10, as half.h's loop does
    const int shift = __clz(static_cast<int>(mantissa)) - 21;
    mantissa = (mantissa << shift) & 0x3ffu;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  return __uint_as_float(bits);
}

__device__ __forceinline__ uint16_t f32_to_f16_bits(float value) {
  const uint32_t bits = __float_as_uint(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (magnitude >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (magnitude < 0x38800000u) {
    if (magnitude < 0x33000000u) return sign;
    const uint32_t exponent = magnitude >> 23;
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;
    uint32_t half_mantissa = mantissa >> shift;
    const uint32_t remainder = mantissa & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1u))) ++half_mantissa;
    return static_cast<uint16_t>(sign | half_mantissa);
  }
  const uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u) - 0x38000000u;
  if (rounded >= 0x0f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

// ------------------------------------------------------------------------------------- element access
// Storage<D>::T is the element type of a dtype D tensor; load widens to f32 (exactly), store narrows.

template <DType D>
struct Storage;

template <>
struct Storage<DType::F32> {
  using T = float;
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return p[i]; }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = v; }
};

template <>
struct Storage<DType::BF16> {
  using T = uint16_t;
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return bf16_bits_to_f32(p[i]); }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = f32_to_bf16_bits(v); }
};

template <>
struct Storage<DType::F16> {
  using T = uint16_t;
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return f16_bits_to_f32(p[i]); }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = f32_to_f16_bits(v); }
};

// ------------------------------------------------------------------------------------------ 16-byte groups
// Memory-bound kernels move kGroup<A> elements (16 bytes) per access where every address allows it (a
// group-aligned width and 16-byte aligned pointers: see aligned16), else one element per access (kCount 1).

template <DType A>
inline constexpr int kGroup = static_cast<int>(16 / sizeof(typename Storage<A>::T));

inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// out[k] = p[i + k] widened, k < kCount; p + i is 16-byte aligned when kCount elements fill whole 16 bytes.
template <DType A, int kCount>
__device__ __forceinline__ void load_group(const typename Storage<A>::T* p, int64_t i, float (&out)[kCount]) {
  using T = typename Storage<A>::T;
  if constexpr (kCount * sizeof(T) % 16 == 0) {
    constexpr int kWords = static_cast<int>(kCount * sizeof(T) / 16);
    uint4 raw[kWords];
#pragma unroll
    for (int w = 0; w < kWords; ++w) raw[w] = reinterpret_cast<const uint4*>(p + i)[w];
    const T* e = reinterpret_cast<const T*>(raw);
#pragma unroll
    for (int k = 0; k < kCount; ++k) out[k] = Storage<A>::load(e, k);
  } else {
#pragma unroll
    for (int k = 0; k < kCount; ++k) out[k] = Storage<A>::load(p, i + k);
  }
}

// p[i + k] = v[k] narrowed, k < kCount; alignment as for load_group.
template <DType A, int kCount>
__device__ __forceinline__ void store_group(typename Storage<A>::T* p, int64_t i, const float (&v)[kCount]) {
  using T = typename Storage<A>::T;
  if constexpr (kCount * sizeof(T) % 16 == 0) {
    constexpr int kWords = static_cast<int>(kCount * sizeof(T) / 16);
    uint4 raw[kWords];
    T* e = reinterpret_cast<T*>(raw);
#pragma unroll
    for (int k = 0; k < kCount; ++k) Storage<A>::store(e, k, v[k]);
#pragma unroll
    for (int w = 0; w < kWords; ++w) reinterpret_cast<uint4*>(p + i)[w] = raw[w];
  } else {
#pragma unroll
    for (int k = 0; k < kCount; ++k) Storage<A>::store(p, i + k, v[k]);
  }
}

// --------------------------------------------------------------------------------------------- ranking

// True if (a, a_index) ranks before (b, b_index): larger first, NaN largest, ties to the lower index (the
// CPU backend's ranks_before). -0 and +0 are equal, so they tie.
__device__ __forceinline__ bool ranks_before(float a, int32_t a_index, float b, int32_t b_index) {
  const bool a_nan = isnan(a);
  const bool b_nan = isnan(b);
  if (a_nan != b_nan) return a_nan;
  if (!a_nan && a != b) return a > b;
  return a_index < b_index;
}

// An unsigned key whose order is that of ranks_before's values: NaN (every payload) above +inf, -0 equal to
// +0.
__device__ __forceinline__ uint32_t order_key(float v) {
  if (isnan(v)) return 0xffffffffu;
  const uint32_t bits = v == 0.0f ? 0u : __float_as_uint(v);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// The first-ranked element seen so far; the sentinel index loses every tie with a real element.
struct Best {
  float value;
  int32_t index;
};

__device__ __forceinline__ Best no_best() {
  return {__uint_as_float(0xff800000u), 0x7fffffff};  // (-inf, INT32_MAX)
}

__device__ __forceinline__ Best better_of(Best a, Best b) {
  return ranks_before(b.value, b.index, a.value, a.index) ? b : a;
}

// ---------------------------------------------------------------------------------------------- shuffles

__device__ __forceinline__ float shfl_xor(float v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ double shfl_xor(double v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ unsigned int shfl_xor(unsigned int v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ Best shfl_xor(Best v, int mask) {
  return {__shfl_xor_sync(0xffffffffu, v.value, mask), __shfl_xor_sync(0xffffffffu, v.index, mask)};
}

// ---------------------------------------------------------------------------------------------- reductions
// Block-wide reductions for blockDim.x a multiple of 32 (at most 1024), called by every thread of the block.
// `shared` holds 32 values; every thread gets the result, and `shared` may be reused once the call returns.
// The combination order depends only on the block size, so results are deterministic.

template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int mask = 16; mask > 0; mask >>= 1) v = op(v, shfl_xor(v, mask));
  return v;
}

template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity, T* shared) {
  v = warp_reduce(v, op);
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x >> 5);
  T total = lane < warps ? shared[lane] : identity;
  total = warp_reduce(total, op);  // every warp reduces the partials, so no broadcast is needed
  __syncthreads();
  return total;
}

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};

// The larger, NaN skipped (the CPU backend's `x > m ? x : m` starting from -inf).
struct MaxSkippingNaNOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return b > a ? b : a; }
};

struct BetterOp {
  __device__ __forceinline__ Best operator()(Best a, Best b) const { return better_of(a, b); }
};

// ------------------------------------------------------------------------------------------- launch sizes

// Threads for a block that reduces one row: a power of two in [32, 1024] giving each thread >= ~4 elements.
inline int row_threads(int64_t width) {
  int threads = 32;
  while (threads < 1024 && static_cast<int64_t>(threads) * 4 < width) threads <<= 1;
  return threads;
}

// Blocks for one block per row; kernels loop over rows by gridDim.x, so the grid may be capped.
inline unsigned int row_blocks(int64_t rows) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 20;
  return static_cast<unsigned int>(rows < kMaxBlocks ? rows : kMaxBlocks);
}

// Element-wise kernels: 256 threads per block, grid-stride loops over at most 2^16 blocks.
inline constexpr int kElementThreads = 256;
inline unsigned int element_blocks(int64_t n) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 16;
  const int64_t blocks = (n + kElementThreads - 1) / kElementThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// Grid-stride index helpers (64-bit: tensors may exceed 2^31 elements).
__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace dlm::cuda
