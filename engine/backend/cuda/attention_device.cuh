#pragma once
// The attention kernels: scaled dot-product attention over a ragged batch, FlashAttention-2 style (the op is
// in attention.cpp). No score matrix reaches global memory: each block streams its sequence's keys through
// shared memory in tiles of kKeys with an online softmax in f32.
//
// Work. A block owns up to kVectors query vectors of one sequence: `rows_per_tile` query rows times the
// `heads_per_block` query heads that share one kv head (GQA/MQA), so each K/V tile it loads serves all of
// them (vector i is row i / heads_per_block, head i % heads_per_block). Grid: x enumerates the tiles of all
// sequences (each block finds its sequence from the device offsets), y the kv heads times the chunks their
// query heads are split into when a group is larger than kVectors, and z the shares of the keys: with
// CudaOptions::split_attention_keys, a call that makes too few blocks to fill the device (a decoding step)
// gives each share of a block's key tiles its own block, which writes its vectors' partial softmax to scratch
// for attention_combine.cu to merge.
//
// Visibility is evaluated per (query, key) element from positions, so it never depends on positions being
// sorted. Positions become "codes" once (the position, or position / block_size for block-causal), and a key
// tile is skipped only when the bounds of the codes prove no query of the block sees any of its keys.
//
// Numerics mirror CpuBackend::attention (engine/backend/cpu/attention.cpp) case by case: key tiles of 64 from
// the sequence's first key, so rescaling happens at the same points; a tile a query sees no key of leaves it
// untouched; a tile whose visible scores are all -inf adds nothing (its probabilities are 0) and sets no
// maximum; a NaN score makes the running maximum NaN and hence the row NaN, and +inf gives exp(inf - inf) =
// NaN; a query with no visible key gets zeros, one whose visible scores were all -inf gets NaN. Visible keys
// contribute p * v even when p == 0 (so 0 * inf = NaN as in torch), and hidden keys never contribute,
// whatever their values hold.
//
// This header holds what both kernels share (the block's tile and heads, visibility, the online-softmax
// step); the kernels are in attention_simt.cu and attention_mma.cu, the launcher in attention.cu.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/cuda_helpers.cuh"

namespace dlm::cuda::attention_detail {

constexpr int kVectors = 64;  // query vectors per block
constexpr int kKeys = 64;     // keys per tile: the CPU backend's kKeyTile
constexpr unsigned kFullMask = 0xffffffffu;
// The probability slot of a key the query cannot see: -0.0f, which exp() never returns.
constexpr uint32_t kHiddenBits = 0x80000000u;

struct Params {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  const int32_t* query_offsets;
  const int32_t* key_offsets;
  const int32_t* query_positions;
  const int32_t* key_positions;
  int sequences;
  int query_rows;
  int key_rows;
  int query_heads;
  int kv_heads;
  int group;            // query heads per kv head
  int heads_per_block;  // query heads of one group in a block
  int head_chunks;      // blocks a group is split into
  int rows_per_tile;    // query rows per block
  int head_dim;
  int value_dim;
  int q_stride;  // elements per row of the Q and K tiles in shared memory
  int v_stride;  // elements per row of the V tile in shared memory
  float scale;
  float softcap;
  VisibilityKind visibility;
  long long block_size;
  int block_size32;  // block_size when it fits in an int (32-bit division), else 0
  long long window;
  bool out_bf16;
  // With splits > 1, block z of the grid takes the z-th share of its query block's key tiles and writes its
  // vectors' partial softmax to split_stats / split_acc (split_slot) instead of the output; attention_combine
  // then merges the shares.
  int splits;
  float4* split_stats;  // [splits][query_rows][query_heads]: running max, running sum, whether a key was seen
  float* split_acc;     // [splits][query_rows][query_heads][value_dim]: the unnormalized outputs
};

// The block's share of the batch: query rows [row_begin, row_begin + row_count) of `sequence` (-1: none, the
// block has nothing to do) and that sequence's keys.
struct Tile {
  int sequence;
  int row_begin;
  int row_count;
  int key_begin;
  int key_count;
};

// The kv head and the query heads [head_begin, head_begin + heads) of this block.
struct Heads {
  int kv_head;
  int head_begin;
  int heads;
};

__device__ __forceinline__ Heads block_heads(const Params& p) {
  const int kv_head = static_cast<int>(blockIdx.y) / p.head_chunks;
  const int first = (static_cast<int>(blockIdx.y) % p.head_chunks) * p.heads_per_block;
  return {kv_head, kv_head * p.group + first, min(p.heads_per_block, p.group - first)};
}

__device__ __forceinline__ int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Called by warp 0: block `tile` of the x grid is tile number `tile` of the batch, counting each sequence's
// ceil(rows / rows_per_tile) tiles in order. Offsets are clamped to the tensors, so malformed offsets on the
// device cannot send a block outside them.
__device__ inline void find_tile(const Params& p, int tile, Tile* out) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  if (lane == 0) out->sequence = -1;
  __syncwarp();
  long long before = 0;  // tiles of the sequences before this chunk of 32
  for (int base = 0; base < p.sequences; base += 32) {
    const int b = base + lane;
    int begin = 0;
    int count = 0;
    long long tiles = 0;
    if (b < p.sequences) {
      begin = clamp_int(p.query_offsets[b], 0, p.query_rows);
      count = clamp_int(p.query_offsets[b + 1], begin, p.query_rows) - begin;
      tiles = count / p.rows_per_tile + (count % p.rows_per_tile != 0 ? 1 : 0);
    }
    long long inclusive = tiles;
    for (int offset = 1; offset < 32; offset <<= 1) {
      const long long below = __shfl_up_sync(kFullMask, inclusive, offset);
      if (lane >= offset) inclusive += below;
    }
    const long long first = before + inclusive - tiles;
    if (tiles > 0 && tile >= first && tile < first + tiles) {
      const int row = begin + static_cast<int>(tile - first) * p.rows_per_tile;
      const int key_begin = clamp_int(p.key_offsets[b], 0, p.key_rows);
      out->sequence = b;
      out->row_begin = row;
      out->row_count = min(p.rows_per_tile, begin + count - row);
      out->key_begin = key_begin;
      out->key_count = clamp_int(p.key_offsets[b + 1], key_begin, p.key_rows) - key_begin;
    }
    before += __shfl_sync(kFullMask, inclusive, 31);
    if (tile < before) break;
  }
  __syncwarp();
}

// What visibility compares: the position itself, or its block for block-causal (C++ division, as the CPU's).
__device__ __forceinline__ int position_code(const Params& p, int position) {
  if (p.visibility != VisibilityKind::BlockCausal) return position;
  return p.block_size32 > 0 ? position / p.block_size32 : static_cast<int>(position / p.block_size);
}

// Visibility::sees on codes.
__device__ __forceinline__ bool code_sees(const Params& p, int query, int key) {
  switch (p.visibility) {
    case VisibilityKind::Bidirectional:
      return true;
    case VisibilityKind::Causal:
    case VisibilityKind::BlockCausal:
      return key <= query;
    case VisibilityKind::SlidingWindow:
      return key <= query && static_cast<long long>(query) - key < p.window;
  }
  return false;
}

// True when every query code in [qmin, qmax] sees every key code in [kmin, kmax].
__device__ __forceinline__ bool tile_full(const Params& p, int qmin, int qmax, int kmin, int kmax) {
  switch (p.visibility) {
    case VisibilityKind::Bidirectional:
      return true;
    case VisibilityKind::Causal:
    case VisibilityKind::BlockCausal:
      return kmax <= qmin;
    case VisibilityKind::SlidingWindow:
      return kmax <= qmin && static_cast<long long>(qmax) - kmin < p.window;
  }
  return false;
}

// True when no query code in [qmin, qmax] sees any key code in [kmin, kmax].
__device__ __forceinline__ bool tile_hidden(const Params& p, int qmin, int qmax, int kmin, int kmax) {
  switch (p.visibility) {
    case VisibilityKind::Bidirectional:
      return false;
    case VisibilityKind::Causal:
    case VisibilityKind::BlockCausal:
      return kmin > qmax;
    case VisibilityKind::SlidingWindow:
      return kmin > qmax || static_cast<long long>(qmin) - kmax >= p.window;
  }
  return false;
}

// Called by warp 0 once the tile is known: which vectors exist, their codes, and the codes' bounds.
__device__ inline void query_codes(const Params& p, const Tile& t, const Heads& h, int* code, int* valid,
                                   int* bounds) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  int lo = INT_MAX;
  int hi = INT_MIN;
  for (int vec = lane; vec < kVectors; vec += 32) {
    const int row = vec / p.heads_per_block;
    const bool ok = row < t.row_count && vec % p.heads_per_block < h.heads;
    const int c = ok ? position_code(p, p.query_positions[t.row_begin + row]) : 0;
    code[vec] = c;
    valid[vec] = ok;
    if (ok) {
      lo = min(lo, c);
      hi = max(hi, c);
    }
  }
  for (int mask = 16; mask > 0; mask >>= 1) {
    lo = min(lo, __shfl_xor_sync(kFullMask, lo, mask));
    hi = max(hi, __shfl_xor_sync(kFullMask, hi, mask));
  }
  if (lane == 0) {
    bounds[0] = lo;
    bounds[1] = hi;
  }
}

// The key tiles [begin, end) of this block: all of its sequence's, or with splits the blockIdx.z-th of
// p.splits near-equal shares (empty for the shares past a short sequence's last tile).
struct TileRange {
  int begin;
  int end;
};

__device__ __forceinline__ TileRange block_tile_range(const Params& p, const Tile& t) {
  const int tiles = (t.key_count + kKeys - 1) / kKeys;
  if (p.splits <= 1) return {0, tiles};
  const int share = (tiles + p.splits - 1) / p.splits;
  const int begin = min(static_cast<int>(blockIdx.z) * share, tiles);
  return {begin, min(begin + share, tiles)};
}

// The index of block vector `vec`'s partial result among split_stats (times value_dim: among split_acc).
__device__ __forceinline__ int64_t split_slot(const Params& p, const Tile& t, const Heads& h, int vec) {
  return (static_cast<int64_t>(blockIdx.z) * p.query_rows + t.row_begin + vec / p.heads_per_block) *
             p.query_heads +
         h.head_begin + vec % p.heads_per_block;
}

__device__ __forceinline__ void store_split_stats(const Params& p, int64_t slot, float running_max,
                                                  float running_sum, bool saw_key) {
  p.split_stats[slot] = make_float4(running_max, running_sum, saw_key ? 1.0f : 0.0f, 0.0f);
}

// Called by every warp alike (same inputs, same answer): the first key tile in [tile, end) that some
// query of the block may see, or `end` when none is left. Each lane gets the codes of keys lane and
// lane + 32 of that tile; `full` says whether every vector of the block sees all 64 keys of it (then no
// element needs its own check: vectors that do not exist compute rows nobody stores).
__device__ inline int next_visible_tile(const Params& p, const Tile& t, int tile, int end, int qmin, int qmax,
                                        int& code_lo, int& code_hi, bool& full) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (; tile < end; ++tile) {
    const int base = t.key_begin + tile * kKeys;
    const int keys = min(kKeys, t.key_count - tile * kKeys);
    const bool has_lo = lane < keys;
    const bool has_hi = lane + 32 < keys;
    code_lo = has_lo ? position_code(p, p.key_positions[base + lane]) : 0;
    code_hi = has_hi ? position_code(p, p.key_positions[base + lane + 32]) : 0;
    if (p.visibility == VisibilityKind::Bidirectional) {
      full = keys == kKeys;
      break;
    }
    int lo = min(has_lo ? code_lo : INT_MAX, has_hi ? code_hi : INT_MAX);
    int hi = max(has_lo ? code_lo : INT_MIN, has_hi ? code_hi : INT_MIN);
    for (int mask = 16; mask > 0; mask >>= 1) {
      lo = min(lo, __shfl_xor_sync(kFullMask, lo, mask));
      hi = max(hi, __shfl_xor_sync(kFullMask, hi, mask));
    }
    if (!tile_hidden(p, qmin, qmax, lo, hi)) {
      full = keys == kKeys && tile_full(p, qmin, qmax, lo, hi);
      break;
    }
  }
  return tile;
}

// max() that lets a NaN through (the CPU's max_keep_nan).
__device__ __forceinline__ float max_keep_nan(float a, float b) {
  return (b > a || isnan(b)) ? b : a;
}

__device__ __forceinline__ float softcapped(const Params& p, float score) {
  float s = score * p.scale;
  if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
  return s;
}

__device__ __forceinline__ bool is_hidden(float prob) {
  return __float_as_uint(prob) == kHiddenBits;
}

// The output of a vector: zero without a visible key, NaN when all its visible scores were -inf.
__device__ __forceinline__ float finish_value(bool saw_key, float sum, float inv_sum, float acc) {
  if (!saw_key) return 0.0f;
  return sum == 0.0f ? __uint_as_float(0x7fc00000u) : acc * inv_sum;
}

__device__ __forceinline__ void store_out(const Params& p, int64_t index, float value) {
  if (p.out_bf16) {
    Storage<DType::BF16>::store(static_cast<uint16_t*>(p.out), index, value);
  } else {
    static_cast<float*>(p.out)[index] = value;
  }
}

// The online-softmax step shared by both kernels for one vector and one key tile, given that the vector sees
// some key of it (`any`) and the largest visible score (`tile_max`). Returns whether probabilities are
// exp(score - new_max) (`live`), and sets the factor the accumulators are rescaled by (1 when they keep their
// scale).
struct Step {
  bool live;
  float new_max;
  float correction;
};

// exp(x) as the kernels take it: expf in the f32 kernel (as close to the CPU's std::exp as CUDA gets), one
// exp2f of x log2(e) in the tensor-core kernel (~2 ulp further off, far below its bf16 rounding of P). Both
// give 0 for -inf and NaN for NaN.
template <bool kFast>
__device__ __forceinline__ float exp_of(float x) {
  return kFast ? exp2f(x * 1.4426950408889634f) : expf(x);
}

template <bool kFast>
__device__ __forceinline__ Step softmax_step(bool any, float tile_max, float running_max) {
  Step step;
  step.live = any && !(tile_max == -INFINITY);
  step.new_max = step.live ? max_keep_nan(running_max, tile_max) : running_max;
  step.correction =
      step.live && !(step.new_max == running_max) ? exp_of<kFast>(running_max - step.new_max) : 1.0f;
  return step;
}

// Launches `kernel` with `shared_bytes` of dynamic shared memory, raising its limit first where needed.
cudaError_t launch_kernel(void (*kernel)(Params), dim3 grid, int threads, size_t shared_bytes,
                          cudaStream_t stream, const Params& p);

// The kernels' launchers: `p` complete but for the shared-memory strides, which they set.
cudaError_t launch_simt(cudaStream_t stream, dim3 grid, Params p, DType in);
cudaError_t launch_mma(cudaStream_t stream, dim3 grid, Params p);
// attention_combine.cu: merges the p.splits partial results of every query vector into the output.
cudaError_t launch_combine(cudaStream_t stream, const Params& p);

}  // namespace dlm::cuda::attention_detail
