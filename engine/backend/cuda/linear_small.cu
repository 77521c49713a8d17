// linear for few rows: out[M, N] = x[M, K] * W[N, K]^T (+ bias[N]), bf16 x and W, f32 sums (the op is in
// linear.cpp). With M <= 32 a product reads its weights once and does little else, so what counts is
// streaming W at the memory's rate: every multiprocessor busy, and enough loads in flight. cuBLASLt's tiles
// leave many multiprocessors idle on these shapes (an N of 4096 makes 32 tiles of 128), so the K axis is
// split as well, into ranges sized for one wave of blocks.
//
// A block owns 128 rows of W over one K range; each of its 4 warps owns 32 rows and all of x's rows, as the
// A (W) and B (x^T) operands of mma.sync m16n8k16. W goes straight from global memory to registers, 16 bytes
// per lane per row and kDepth 32-wide chunks ahead; x's slice for the range sits in shared memory.
//
// Fragments. Lane (g, c) = (lane / 4, lane % 4) loads W[row g + 8 r][chunk + 8 c .. + 7]; it needs the A
// fragment's elements at k = 2c, 2c+1, 2c+8, 2c+9 of a 16-wide step, and the B fragment's x elements at the
// same k. Any bijection between a chunk's 32 physical k and the two steps' logical k gives the same sum as
// long as A and B use it alike, so step s takes physical k 8c + 4s .. 8c + 4s + 3 of both operands: the
// lane's 16-byte W load is exactly its A elements for both steps, and one 16-byte read of x per 8 tokens its
// B.
//
// Ranges. With one range a block writes its outputs itself. With several, each block writes its f32 partial
// sums, and the last of a row block's ranges to arrive (a counter per row block, reset by that block) adds
// them up in range order, so the result does not depend on which block came last: partial 0 + ... + partial
// S-1 + bias, rounded once, as linear_finish does for cuBLASLt's products.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/linear_kernels.h"
#include "engine/backend/cuda/tensor_cores.cuh"

namespace dlm::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kWarpRows = 32;  // two m16 fragments
constexpr int kBlockRows = kWarps * kWarpRows;
constexpr int kChunk = 32;         // k per iteration: two mma steps
constexpr int kDepth = 4;          // chunks of W loaded ahead of the one multiplied
constexpr int kRangeQuantum = 64;  // K ranges are multiples of this (keeps x's shared rows conflict-free)
constexpr int kRowPad = 32;        // bf16 per shared row beyond the range: a pitch of 64 mod 128 bytes
constexpr int kMaxSharedBytes = 96 << 10;  // two blocks fit a multiprocessor, as their registers do
constexpr int kTargetBlocks = 2;           // blocks per multiprocessor the split aims for: one wave

struct Params {
  const uint16_t* w;  // [n, k]
  const uint16_t* x;  // [m, k]
  const void* bias;   // [n] or null
  DType bias_dtype;
  void* out;  // [m, n]
  DType out_dtype;
  float* partial;  // [splits, m, n] when splits > 1
  int* arrivals;   // [row blocks], zero between launches
  int m, n, k, range, splits;
};

__device__ __forceinline__ float load_as_f32(const void* p, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::BF16:
      return Storage<DType::BF16>::load(static_cast<const uint16_t*>(p), i);
    case DType::F16:
      return Storage<DType::F16>::load(static_cast<const uint16_t*>(p), i);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_from_f32(void* p, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::BF16:
      return Storage<DType::BF16>::store(static_cast<uint16_t*>(p), i, v);
    case DType::F16:
      return Storage<DType::F16>::store(static_cast<uint16_t*>(p), i, v);
    default:
      static_cast<float*>(p)[i] = v;
  }
}

// out[token, row] = sum + bias[row], rounded once.
__device__ __forceinline__ void finish(const Params& p, int token, int row, float sum) {
  if (p.bias != nullptr) sum += load_as_f32(p.bias, p.bias_dtype, row);
  store_from_f32(p.out, p.out_dtype, static_cast<int64_t>(token) * p.n + row, sum);
}

// The last block of a row block to arrive adds up the ranges' partial sums (read from L2: other blocks wrote
// them) and resets the row block's counter for the next launch.
__device__ void add_up_ranges(const Params& p, int first_row) {
  __shared__ bool last;
  __threadfence();  // this block's partial sums are visible before its arrival counts
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(p.arrivals + blockIdx.x, 1) == p.splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int64_t plane = static_cast<int64_t>(p.m) * p.n;
  for (int i = static_cast<int>(threadIdx.x); i < p.m * kBlockRows; i += kThreads) {
    const int token = i / kBlockRows, row = first_row + i % kBlockRows;
    if (row >= p.n) continue;
    const float* at = p.partial + static_cast<int64_t>(token) * p.n + row;
    float sum = __ldcg(at);
    for (int s = 1; s < p.splits; ++s) sum += __ldcg(at + s * plane);
    finish(p, token, row, sum);
  }
  if (threadIdx.x == 0) p.arrivals[blockIdx.x] = 0;
}

__device__ __forceinline__ void load_chunk(uint4 (&dst)[4], const uint16_t* const (&rows)[4], int at,
                                           bool valid) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    dst[r] = valid ? __ldcs(reinterpret_cast<const uint4*>(rows[r] + at)) : make_uint4(0, 0, 0, 0);
  }
}

// kFrags: x's rows in groups of 8 (m <= 8 * kFrags).
template <int kFrags>
__global__ void __launch_bounds__(kThreads, 2) small_m_product(Params p) {
  extern __shared__ uint4 small_m_shared[];
  uint16_t* xs = reinterpret_cast<uint16_t*>(small_m_shared);  // [8 * kFrags][pitch]
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, c = lane % 4;
  const int k0 = static_cast<int>(blockIdx.y) * p.range;
  const int count = min(p.range, p.k - k0);  // a multiple of 8, as k is
  const int chunks = (count + kChunk - 1) / kChunk;
  const int pitch = p.range + kRowPad;

  // W first, so its loads are in flight while x's slice arrives. Rows past n read row n - 1 and are dropped.
  const int first_row = static_cast<int>(blockIdx.x) * kBlockRows + warp * kWarpRows;
  const uint16_t* rows[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int row = min(first_row + g + 8 * r, p.n - 1);
    rows[r] = p.w + static_cast<int64_t>(row) * p.k + k0 + 8 * c;
  }
  uint4 ahead[kDepth][4];
#pragma unroll
  for (int d = 0; d < kDepth; ++d) load_chunk(ahead[d], rows, d * kChunk, d * kChunk + 8 * c < count);

  // x's slice, zero past m and past the range's end up to a whole chunk (W is zero there, and 0 * NaN would
  // not be).
  const int groups = chunks * (kChunk / 8);
  for (int i = static_cast<int>(threadIdx.x); i < 8 * kFrags * groups; i += kThreads) {
    const int row = i / groups, group = i % groups;
    const bool valid = row < p.m && 8 * group < count;
    const uint16_t* src = valid ? p.x + static_cast<int64_t>(row) * p.k + k0 + 8 * group : p.x;
    cp_async_16(xs + row * pitch + 8 * group, src, valid);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  float acc[2][kFrags][4] = {};
  for (int base = 0; base < chunks; base += kDepth) {
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
      const int chunk = base + d;
      if (chunk >= chunks) break;
      uint4 w[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) w[r] = ahead[d][r];
      const int next = (chunk + kDepth) * kChunk;
      load_chunk(ahead[d], rows, next, next + 8 * c < count);
#pragma unroll
      for (int j = 0; j < kFrags; ++j) {
        const uint4 b = *reinterpret_cast<const uint4*>(xs + (8 * j + g) * pitch + chunk * kChunk + 8 * c);
#pragma unroll
        for (int f = 0; f < 2; ++f) {
          const uint32_t step0[4] = {w[2 * f].x, w[2 * f + 1].x, w[2 * f].y, w[2 * f + 1].y};
          const uint32_t step1[4] = {w[2 * f].z, w[2 * f + 1].z, w[2 * f].w, w[2 * f + 1].w};
          mma_bf16(acc[f][j], step0, b.x, b.y);
          mma_bf16(acc[f][j], step1, b.z, b.w);
        }
      }
    }
  }

  // acc[f][j] = {(row g, token 2c), (row g, token 2c + 1), (row g + 8, token 2c), (row g + 8, token 2c + 1)}
  // of the 16 x 8 tile at rows first_row + 16 f, tokens 8 j.
  float* partial = p.splits > 1 ? p.partial + static_cast<int64_t>(blockIdx.y) * p.m * p.n : nullptr;
#pragma unroll
  for (int f = 0; f < 2; ++f) {
#pragma unroll
    for (int j = 0; j < kFrags; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = first_row + 16 * f + g + 8 * (e / 2);
        const int token = 8 * j + 2 * c + e % 2;
        if (row >= p.n || token >= p.m) continue;
        if (p.splits == 1) {
          finish(p, token, row, acc[f][j][e]);
        } else {
          partial[static_cast<int64_t>(token) * p.n + row] = acc[f][j][e];
        }
      }
    }
  }
  if (p.splits > 1) add_up_ranges(p, static_cast<int>(blockIdx.x) * kBlockRows);
}

template <int kFrags>
cudaError_t launch(cudaStream_t stream, const Params& p) {
  const int shared_bytes = 8 * kFrags * (p.range + kRowPad) * 2;
  const cudaError_t status = allow_shared_bytes(small_m_product<kFrags>, static_cast<size_t>(shared_bytes));
  if (status != cudaSuccess) return status;
  const dim3 grid(static_cast<unsigned>((p.n + kBlockRows - 1) / kBlockRows),
                  static_cast<unsigned>(p.splits));
  small_m_product<kFrags><<<grid, kThreads, shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

int64_t round_up(int64_t value, int64_t quantum) {
  return (value + quantum - 1) / quantum * quantum;
}

}  // namespace

bool small_m_product_fits(int64_t m, int64_t n, int64_t k) {
  return m >= 1 && m <= kSmallProductMaxRows && k % 8 == 0 && k <= INT32_MAX && m * n <= INT32_MAX &&
         (n + kBlockRows - 1) / kBlockRows <= kSmallProductArrivals;
}

SmallProductSplit small_m_product_split(int64_t m, int64_t n, int64_t k, int sm_count) {
  const int64_t row_groups = (m + 7) / 8;
  const int64_t blocks_along_n = (n + kBlockRows - 1) / kBlockRows;
  const int64_t max_range = std::max<int64_t>(
      kRangeQuantum, (kMaxSharedBytes / (16 * row_groups) - kRowPad) / kRangeQuantum * kRangeQuantum);
  // Enough ranges for a wave of blocks, and for x's slice to fit; then ranges of equal size.
  const int64_t wanted = std::max<int64_t>((kTargetBlocks * sm_count + blocks_along_n - 1) / blocks_along_n,
                                           (k + max_range - 1) / max_range);
  const int64_t range = std::max<int64_t>(kRangeQuantum, round_up((k + wanted - 1) / wanted, kRangeQuantum));
  return {static_cast<int>((k + range - 1) / range), static_cast<int>(range)};
}

cudaError_t launch_small_m_product(cudaStream_t stream, const SmallProduct& product) {
  const Params p{static_cast<const uint16_t*>(product.w),
                 static_cast<const uint16_t*>(product.x),
                 product.bias,
                 product.bias_dtype,
                 product.out,
                 product.out_dtype,
                 product.partial,
                 product.arrivals,
                 static_cast<int>(product.m),
                 static_cast<int>(product.n),
                 static_cast<int>(product.k),
                 product.split.range,
                 product.split.splits};
  switch ((product.m + 7) / 8) {
    case 1:
      return launch<1>(stream, p);
    case 2:
      return launch<2>(stream, p);
    case 3:
      return launch<3>(stream, p);
    case 4:
      return launch<4>(stream, p);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
