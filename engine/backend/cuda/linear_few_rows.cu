// linear for few rows: out[M, N] = x[M, K] * W[N, K]^T (+ bias[N]) for bf16 x and W with M <= 32 (a block
// against the cache, AR decoding), f32 sums; the op is in linear.cpp. Such a product reads its weights once
// and does little else, so what counts is streaming W at the memory's rate: every multiprocessor busy, with
// enough bytes in flight. cuBLASLt's tiles leave many multiprocessors idle on these shapes (an N of 4096
// makes 32 tiles of 128 outputs for 132 multiprocessors).
//
// A block owns 64 rows of W (output features) over one range of K; each of its 4 warps owns 16 of them and
// all of x's rows, as the A (W) and B (x^T) operands of mma.sync m16n8k16. Slices of 128 k of W and x go
// through a kStages-deep cp.async pipeline in shared memory, in 16-byte pieces XOR-swizzled per row so that
// ldmatrix reads 8 rows without bank conflicts.
//
// K is split into ranges where the row blocks alone would leave the device partly idle. The blocks of one
// row block's ranges form a thread-block cluster: after its loop each writes its f32 partial sums into its
// own shared memory, and each then finishes a share of the outputs, adding the ranges' partial sums in range
// order through distributed shared memory, then the bias, and rounding once. So a call gives the same bits
// every time, with no scratch in global memory and no second launch.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/kernel_attributes.h"
#include "engine/backend/cuda/linear_kernels.h"
#include "engine/backend/cuda/tensor_cores.cuh"

namespace dlm::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kChunk = 128;          // k per pipeline stage
constexpr int kPieces = kChunk / 8;  // 16-byte pieces per row of a stage
constexpr int kMaxRanges = 8;        // blocks of a portable cluster
constexpr int kMinRangeChunks = 4;   // a range shorter than this pays its setup for too few bytes

struct Params {
  const uint16_t* w;  // [n, k]
  const uint16_t* x;  // [m, k]
  const void* bias;   // [n] or null
  DType bias_dtype;
  void* out;  // [m, n]
  DType out_dtype;
  int m, n, k;
};

// A block's shape: kWarps warps of kWarpTiles m16 fragments of W rows each, x's rows in kTokenTiles tiles of
// 8 (m <= 8 * kTokenTiles), a kStages-deep pipeline, kBlocksPerSm blocks per multiprocessor.
template <int kWarpsT, int kWarpTilesT, int kTokenTilesT, int kStagesT, int kBlocksPerSmT>
struct Tiling {
  static constexpr int kWarps = kWarpsT;
  static constexpr int kWarpTiles = kWarpTilesT;
  static constexpr int kTokenTiles = kTokenTilesT;
  static constexpr int kStages = kStagesT;
  static constexpr int kBlocksPerSm = kBlocksPerSmT;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockRows = 16 * kWarpTiles * kWarps;
  static constexpr int kTokens = 8 * kTokenTiles;
  static constexpr int kStageElements = (kBlockRows + kTokens) * kChunk;  // W's rows, then x's
  static constexpr size_t kSharedBytes = size_t{kStages} * kStageElements * sizeof(uint16_t);
  static constexpr int kPartialPitch = kBlockRows + 4;  // floats per token of the partial sums
  static_assert(kBlockRows * kPieces % kThreads == 0, "the threads share W's pieces evenly");
  static_assert(size_t{kTokens} * kPartialPitch * sizeof(float) <= kSharedBytes, "partial sums fit");
};

// The element offset of (row, piece) in a stage's [rows][kChunk] tile: the piece's low three bits XORed with
// the row's, so the 8 rows an ldmatrix reads at one piece lie in 8 different bank groups.
__device__ __forceinline__ int swizzled(int row, int piece) {
  return row * kChunk + ((piece ^ (row & 7)) << 3);
}

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

// Queues the copies of the chunk of k from k0 into `stage`; pieces past n, m or k are zero (W and x alike
// past k, so those k add 0 * 0).
template <class T>
__device__ __forceinline__ void load_chunk(const Params& p, uint16_t* stage, int first_row, int k0) {
  const int tid = static_cast<int>(threadIdx.x);
  uint16_t* xs = stage + T::kBlockRows * kChunk;
#pragma unroll
  for (int j = 0; j < T::kBlockRows * kPieces / T::kThreads; ++j) {
    const int i = tid + j * T::kThreads;
    const int row = i / kPieces, piece = i % kPieces;
    const int at = k0 + 8 * piece;
    const bool valid = first_row + row < p.n && at < p.k;
    const uint16_t* src = valid ? p.w + static_cast<int64_t>(first_row + row) * p.k + at : p.w;
    cp_async_16(stage + swizzled(row, piece), src, valid);
  }
#pragma unroll
  for (int j = 0; j < (T::kTokens * kPieces + T::kThreads - 1) / T::kThreads; ++j) {
    const int i = tid + j * T::kThreads;
    if (i >= T::kTokens * kPieces) break;
    const int token = i / kPieces, piece = i % kPieces;
    const int at = k0 + 8 * piece;
    const bool valid = token < p.m && at < p.k;
    const uint16_t* src = valid ? p.x + static_cast<int64_t>(token) * p.k + at : p.x;
    cp_async_16(xs + swizzled(token, piece), src, valid);
  }
}

// acc += this warp's rows of W times x^T over one stage.
template <class T>
__device__ __forceinline__ void multiply_chunk(const uint16_t* stage,
                                               float (&acc)[T::kWarpTiles][T::kTokenTiles][4]) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const uint16_t* xs = stage + T::kBlockRows * kChunk;
#pragma unroll
  for (int step = 0; step < kChunk / 16; ++step) {
    uint32_t a[T::kWarpTiles][4];  // per fragment: rows 0-7 and 8-15 at k 0-7, then at k 8-15
#pragma unroll
    for (int f = 0; f < T::kWarpTiles; ++f) {
      ldmatrix_x4(a[f],
                  stage + swizzled((warp * T::kWarpTiles + f) * 16 + (lane & 15), 2 * step + (lane >> 4)));
    }
    if constexpr (T::kTokenTiles == 1) {
      uint32_t b[2];  // tokens 0-7 at k 0-7, then at k 8-15 (lanes 0-15 give the addresses)
      ldmatrix_x2(b, xs + swizzled(lane & 7, 2 * step + ((lane >> 3) & 1)));
#pragma unroll
      for (int f = 0; f < T::kWarpTiles; ++f) mma_bf16(acc[f][0], a[f], b[0], b[1]);
    } else {
#pragma unroll
      for (int t = 0; t < T::kTokenTiles; t += 2) {
        uint32_t b[4];  // tile t at k 0-7 and 8-15, then tile t + 1
        const int q = lane >> 3;
        ldmatrix_x4(b, xs + swizzled(8 * (t + (q >> 1)) + (lane & 7), 2 * step + (q & 1)));
#pragma unroll
        for (int f = 0; f < T::kWarpTiles; ++f) {
          mma_bf16(acc[f][t], a[f], b[0], b[1]);
          mma_bf16(acc[f][t + 1], a[f], b[2], b[3]);
        }
      }
    }
  }
}

template <class T>
__global__ void __launch_bounds__(T::kThreads, T::kBlocksPerSm) few_row_product(Params p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ uint4 few_row_shared[];
  uint16_t* stages = reinterpret_cast<uint16_t*>(few_row_shared);
  const cg::cluster_group cluster = cg::this_cluster();
  const int tid = static_cast<int>(threadIdx.x);
  const int ranges = static_cast<int>(gridDim.y);  // the cluster's blocks, one per range
  const int range = static_cast<int>(blockIdx.y);  // == cluster.block_rank()
  const int first_row = static_cast<int>(blockIdx.x) * T::kBlockRows;

  const int total_chunks = (p.k + kChunk - 1) / kChunk;
  const int range_chunks = (total_chunks + ranges - 1) / ranges;
  const int first_chunk = range * range_chunks;
  const int chunks = max(0, min(total_chunks - first_chunk, range_chunks));
  const int k_begin = first_chunk * kChunk;

  float acc[T::kWarpTiles][T::kTokenTiles][4] = {};
  // The pipeline: one commit group per chunk (empty past the range), chunk c in stage c % kStages.
#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) {
    if (s < chunks) load_chunk<T>(p, stages + s * T::kStageElements, first_row, k_begin + s * kChunk);
    cp_async_commit();
  }
  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<T::kStages - 2>();  // chunk c has landed (this thread's copies)
    __syncthreads();                  // everyone's copies, and everyone is done with chunk c - 1's stage
    const int ahead = c + T::kStages - 1;
    if (ahead < chunks) {
      load_chunk<T>(p, stages + (ahead % T::kStages) * T::kStageElements, first_row,
                    k_begin + ahead * kChunk);
    }
    cp_async_commit();
    multiply_chunk<T>(stages + (c % T::kStages) * T::kStageElements, acc);
  }
  cp_async_wait<0>();
  __syncthreads();  // the stages are free for the partial sums

  // Fragment (f, t, i) of lane (g, c): row 16 f + g + 8 (i / 2) of the warp's, token 8 t + 2 c + i % 2.
  float* partial = reinterpret_cast<float*>(few_row_shared);  // [kTokens][kPartialPitch]
  const int lane = tid % 32, warp = tid / 32;
  const int g = lane >> 2, c4 = lane & 3;
#pragma unroll
  for (int f = 0; f < T::kWarpTiles; ++f) {
#pragma unroll
    for (int t = 0; t < T::kTokenTiles; ++t) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int token = 8 * t + 2 * c4 + (i & 1);
        const int row = (warp * T::kWarpTiles + f) * 16 + g + 8 * (i >> 1);
        partial[token * T::kPartialPitch + row] = acc[f][t][i];
      }
    }
  }
  cluster.sync();  // every range's partial sums are written and visible to the cluster

  for (int i = range * T::kThreads + tid; i < T::kTokens * T::kBlockRows; i += ranges * T::kThreads) {
    const int token = i / T::kBlockRows, feature = i % T::kBlockRows;
    const int row = first_row + feature;
    if (token >= p.m || row >= p.n) continue;
    const int at = token * T::kPartialPitch + feature;
    float sum = cluster.map_shared_rank(partial, 0)[at];
    for (int r = 1; r < ranges; ++r) sum += cluster.map_shared_rank(partial, r)[at];
    if (p.bias != nullptr) sum += load_as_f32(p.bias, p.bias_dtype, row);
    store_from_f32(p.out, p.out_dtype, static_cast<int64_t>(token) * p.n + row, sum);
  }
  cluster.sync();  // the other blocks read this block's partial sums up to here
#else
  __trap();  // clusters need sm_90; few_row_product_fits keeps other devices on cuBLASLt
#endif
}

// The K ranges per row block: the count (up to kMaxRanges, each of at least kMinRangeChunks chunks) whose
// blocks fill the device's slots (blocks_per_sm per multiprocessor) best over whole waves; the fewest ranges
// among those within 2 % of the best fill.
int choose_ranges(int64_t row_blocks, int total_chunks, int64_t slots) {
  int best = 1;
  double best_fill = 0.0;
  for (int ranges = 1; ranges <= kMaxRanges; ++ranges) {
    if (ranges > 1 && total_chunks / ranges < kMinRangeChunks) break;
    const int64_t blocks = row_blocks * ranges;
    const int64_t waves = (blocks + slots - 1) / slots;
    const double fill = static_cast<double>(blocks) / static_cast<double>(waves * slots);
    if (fill > best_fill + 0.02) {
      best = ranges;
      best_fill = fill;
    }
  }
  return best;
}

template <class T>
cudaError_t launch_tiling(cudaStream_t stream, const Params& p, int sm_count) {
  const int64_t row_blocks = (p.n + T::kBlockRows - 1) / T::kBlockRows;
  const int ranges = choose_ranges(row_blocks, (p.k + kChunk - 1) / kChunk,
                                   int64_t{T::kBlocksPerSm} * std::max(sm_count, 1));
  void (*kernel)(Params) = few_row_product<T>;
  const cudaError_t status = allow_shared_bytes(reinterpret_cast<const void*>(kernel), T::kSharedBytes);
  if (status != cudaSuccess) return status;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(ranges));
  config.blockDim = dim3(T::kThreads);
  config.dynamicSmemBytes = T::kSharedBytes;
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = 1;
  cluster.val.clusterDim.y = static_cast<unsigned>(ranges);
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, p);
}

template <int kWarps, int kWarpTiles, int kStages, int kBlocksPerSm>
cudaError_t launch_rows(cudaStream_t stream, const Params& p, int sm_count) {
  if (p.m <= 8)
    return launch_tiling<Tiling<kWarps, kWarpTiles, 1, kStages, kBlocksPerSm>>(stream, p, sm_count);
  if (p.m <= 16)
    return launch_tiling<Tiling<kWarps, kWarpTiles, 2, kStages, kBlocksPerSm>>(stream, p, sm_count);
  return launch_tiling<Tiling<kWarps, kWarpTiles, 4, kStages, kBlocksPerSm>>(stream, p, sm_count);
}

}  // namespace

bool few_row_product_fits(int64_t m, int64_t n, int64_t k, int sm_major) {
  return sm_major >= 9 && m >= 1 && m <= kFewRowProductMaxRows && n >= 1 && k >= 1 && k % 8 == 0 &&
         n <= (int64_t{1} << 30) && k <= (int64_t{1} << 30);
}

cudaError_t launch_few_row_product(cudaStream_t stream, const FewRowProduct& product, int sm_count) {
  const Params p{static_cast<const uint16_t*>(product.w),
                 static_cast<const uint16_t*>(product.x),
                 product.bias,
                 product.bias_dtype,
                 product.out,
                 product.out_dtype,
                 static_cast<int>(product.m),
                 static_cast<int>(product.n),
                 static_cast<int>(product.k)};
  const char* variant = std::getenv("DLM_FEW_ROW_VARIANT");
  switch (variant != nullptr ? std::atoi(variant) : 0) {
    case 1:
      return launch_rows<4, 2, 4, 1>(stream, p, sm_count);
    case 2:
      return launch_rows<8, 1, 4, 1>(stream, p, sm_count);
    case 3:
      return launch_rows<4, 1, 6, 1>(stream, p, sm_count);
    case 4:
      return launch_rows<8, 2, 3, 1>(stream, p, sm_count);
    default:
      return launch_rows<4, 1, 4, 2>(stream, p, sm_count);
  }
}

}  // namespace dlm::cuda
