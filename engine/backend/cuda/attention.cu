// attention: scaled dot-product attention over a ragged batch, FlashAttention-2 style (kernels; the op is in
// attention.cpp). No score matrix reaches global memory: each block streams its sequence's keys through
// shared memory in tiles of kKeys with an online softmax in f32.
//
// Work. A block owns up to kVectors query vectors of one sequence: `rows_per_tile` query rows times the
// `heads_per_block` query heads that share one kv head (GQA/MQA), so each K/V tile it loads serves all of
// them (vector i is row i / heads_per_block, head i % heads_per_block). Grid: x enumerates the tiles of all
// sequences (each block finds its sequence from the device offsets), y the kv heads times the chunks their
// query heads are split into when a group is larger than kVectors.
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
// Two kernels:
// - attention_simt (f32, and bf16 shapes the other cannot take): 256 threads as 16 x 16; thread (ty, tx) owns
//   query vectors ty + 16 i and keys tx + 16 j (i, j < 4) of the 64 x 64 score tile, computed with f32 FMAs
//   from shared memory (float4 reads, rows padded to an odd number of 16-byte units, conflict-free), and
//   output columns tx * 4 + 64 c of its four vectors. Q, then K and V in turn through one buffer, and the
//   probability tile sit in shared memory (<= 150 KB at head_dim 256).
// - attention_mma (bf16 with head_dim and value_dim multiples of 16 and 16-byte aligned tensors): 4 warps of
//   16 vectors each; S = Q K^T and O += P V with mma.sync m16n8k16 (bf16 in, f32 accumulate), fragments by
//   ldmatrix (V through .trans), P rounded to bf16 as in FlashAttention-2. K/V tiles are double-buffered with
//   cp.async, so the next tile loads while this one is computed. A tile whose V holds a non-finite value
//   takes a scalar path for P V (P through shared memory, hidden keys skipped), since the tensor cores would
//   make 0 * inf = NaN out of hidden keys too.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/cuda_helpers.cuh"

namespace dlm::cuda {
namespace {

constexpr int kVectors = 64;  // query vectors per block
constexpr int kKeys = 64;     // keys per tile: the CPU backend's kKeyTile
constexpr int kSimtThreads = 256;
constexpr int kMmaThreads = 128;
constexpr int kSimtProbStride = 80;  // floats per row of the SIMT probability tile (conflict-free writes)
constexpr int kMmaProbStride = 68;   // floats per row of the MMA kernel's scalar-path probability tile
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
__device__ void find_tile(const Params& p, int tile, Tile* out) {
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
__device__ void query_codes(const Params& p, const Tile& t, const Heads& h, int* code, int* valid,
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

// Called by every warp alike (same inputs, same answer): the first key tile at or after `tile` that some
// query of the block may see, or the tile count when none is left. Each lane gets the codes of keys lane and
// lane + 32 of that tile; `full` says whether every vector of the block sees all 64 keys of it (then no
// element needs its own check: vectors that do not exist compute rows nobody stores).
__device__ int next_visible_tile(const Params& p, const Tile& t, int tile, int qmin, int qmax, int& code_lo,
                                 int& code_hi, bool& full) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int tiles = (t.key_count + kKeys - 1) / kKeys;
  for (; tile < tiles; ++tile) {
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

// ================================================================================================ SIMT
// kernel

// Value dims up to 128 fit 128 registers, so two blocks share a multiprocessor.
template <DType In, int kDvChunks>
__global__ void __launch_bounds__(kSimtThreads, kDvChunks <= 2 ? 2 : 1) attention_simt(Params p) {
  using T = typename Storage<In>::T;
  extern __shared__ float4 simt_shared[];
  float* q_s = reinterpret_cast<float*>(simt_shared);                               // [kVectors][q_stride]
  float* kv_s = q_s + kVectors * p.q_stride;                                        // K [kKeys][q_stride] or
  float* p_s = kv_s + kKeys * (p.q_stride > p.v_stride ? p.q_stride : p.v_stride);  // V [kKeys][v_stride]
  __shared__ Tile tile_info;
  __shared__ int q_code[kVectors];
  __shared__ int q_valid[kVectors];
  __shared__ int k_code[kKeys];
  __shared__ int q_bounds[2];

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int tx = tid & 15;
  const int ty = tid >> 4;
  const Heads h = block_heads(p);
  if (warp == 0) {
    find_tile(p, static_cast<int>(blockIdx.x), &tile_info);
    if (tile_info.sequence >= 0) query_codes(p, tile_info, h, q_code, q_valid, q_bounds);
  }
  __syncthreads();
  const Tile t = tile_info;
  if (t.sequence < 0) return;

  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  const int d_model = p.head_dim;
  const int dv_model = p.value_dim;
  const int d_padded = (d_model + 3) & ~3;

  for (int vec = warp; vec < kVectors; vec += kSimtThreads / 32) {
    const bool ok = q_valid[vec] != 0;
    const int64_t base = ok ? (static_cast<int64_t>(t.row_begin + vec / p.heads_per_block) * p.query_heads +
                               h.head_begin + vec % p.heads_per_block) *
                                  d_model
                            : 0;
    for (int d = lane; d < p.q_stride; d += 32) {
      q_s[vec * p.q_stride + d] = ok && d < d_model ? Storage<In>::load(q, base + d) : 0.0f;
    }
  }

  int query_code[4];
  bool query_ok[4];
  float running_max[4];
  float running_sum[4];
  bool saw_key[4];
  float acc[4][kDvChunks][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    query_code[i] = q_code[ty + 16 * i];
    query_ok[i] = q_valid[ty + 16 * i] != 0;
    running_max[i] = -INFINITY;
    running_sum[i] = 0.0f;
    saw_key[i] = false;
#pragma unroll
    for (int c = 0; c < kDvChunks; ++c) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][c][e] = 0.0f;
    }
  }
  const int qmin = q_bounds[0];
  const int qmax = q_bounds[1];
  const int tiles = (t.key_count + kKeys - 1) / kKeys;
  int code_lo = 0;
  int code_hi = 0;
  bool full = false;
  int tile = next_visible_tile(p, t, 0, qmin, qmax, code_lo, code_hi, full);
  while (tile < tiles) {
    const int key0 = t.key_begin + tile * kKeys;
    const int keys = min(kKeys, t.key_count - tile * kKeys);
    if (warp == 0) {
      k_code[lane] = code_lo;
      k_code[lane + 32] = code_hi;
    }
    for (int j = warp; j < kKeys; j += kSimtThreads / 32) {
      const bool ok = j < keys;
      const int64_t base = ok ? (static_cast<int64_t>(key0 + j) * p.kv_heads + h.kv_head) * d_model : 0;
      for (int d = lane; d < p.q_stride; d += 32) {
        kv_s[j * p.q_stride + d] = ok && d < d_model ? Storage<In>::load(k, base + d) : 0.0f;
      }
    }
    __syncthreads();

    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = 0.0f;
    }
#pragma unroll 1
    for (int d = 0; d < d_padded; d += 4) {
      float4 a[4];
      float4 b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        a[i] = *reinterpret_cast<const float4*>(q_s + (ty + 16 * i) * p.q_stride + d);
#pragma unroll
      for (int j = 0; j < 4; ++j)
        b[j] = *reinterpret_cast<const float4*>(kv_s + (tx + 16 * j) * p.q_stride + d);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = fmaf(a[i].x, b[j].x, s[i][j]);
          s[i][j] = fmaf(a[i].y, b[j].y, s[i][j]);
          s[i][j] = fmaf(a[i].z, b[j].z, s[i][j]);
          s[i][j] = fmaf(a[i].w, b[j].w, s[i][j]);
        }
      }
    }

    // Softmax over the tile: vector ty + 16 i is shared by the 16 lanes of one half-warp (xor masks < 16).
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      bool visible[4];
      bool any = false;
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = tx + 16 * j;
        visible[j] = full || (query_ok[i] && key < keys && code_sees(p, query_code[i], k_code[key]));
        s[i][j] = softcapped(p, s[i][j]);
        if (visible[j]) {
          any = true;
          tile_max = max_keep_nan(tile_max, s[i][j]);
        }
      }
#pragma unroll
      for (int mask = 8; mask > 0; mask >>= 1) {
        any = __shfl_xor_sync(kFullMask, static_cast<int>(any), mask) != 0 || any;
        tile_max = max_keep_nan(tile_max, __shfl_xor_sync(kFullMask, tile_max, mask));
      }
      const Step step = softmax_step<false>(any, tile_max, running_max[i]);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float prob = __uint_as_float(kHiddenBits);
        if (visible[j]) {
          prob = step.live ? exp_of<false>(s[i][j] - step.new_max) : 0.0f;
          sum += prob;
        }
        p_s[(ty + 16 * i) * kSimtProbStride + tx + 16 * j] = prob;
      }
#pragma unroll
      for (int mask = 8; mask > 0; mask >>= 1) sum += __shfl_xor_sync(kFullMask, sum, mask);
      if (any) saw_key[i] = true;
      if (step.live) {
        running_max[i] = step.new_max;
        running_sum[i] = running_sum[i] * step.correction + sum;
#pragma unroll
        for (int c = 0; c < kDvChunks; ++c) {
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][c][e] *= step.correction;
        }
      }
    }
    __syncthreads();  // K is read: its buffer takes V

    bool nonfinite = false;
    for (int j = warp; j < kKeys; j += kSimtThreads / 32) {
      const bool ok = j < keys;
      const int64_t base = ok ? (static_cast<int64_t>(key0 + j) * p.kv_heads + h.kv_head) * dv_model : 0;
      for (int d = lane; d < p.v_stride; d += 32) {
        const float value = ok && d < dv_model ? Storage<In>::load(v, base + d) : 0.0f;
        nonfinite |= !isfinite(value);
        kv_s[j * p.v_stride + d] = value;
      }
    }
    // With all of V finite a hidden key's 0 (-0.0f) adds nothing; otherwise hidden keys are skipped one by
    // one.
    if (!__syncthreads_or(nonfinite)) {
#pragma unroll 2
      for (int j = 0; j < keys; ++j) {
        float prob[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) prob[i] = p_s[(ty + 16 * i) * kSimtProbStride + j];
#pragma unroll
        for (int c = 0; c < kDvChunks; ++c) {
          const float4 value = *reinterpret_cast<const float4*>(kv_s + j * p.v_stride + tx * 4 + 64 * c);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            acc[i][c][0] = fmaf(prob[i], value.x, acc[i][c][0]);
            acc[i][c][1] = fmaf(prob[i], value.y, acc[i][c][1]);
            acc[i][c][2] = fmaf(prob[i], value.z, acc[i][c][2]);
            acc[i][c][3] = fmaf(prob[i], value.w, acc[i][c][3]);
          }
        }
      }
    } else {
      for (int j = 0; j < keys; ++j) {
        float prob[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) prob[i] = p_s[(ty + 16 * i) * kSimtProbStride + j];
#pragma unroll
        for (int c = 0; c < kDvChunks; ++c) {
          const float4 value = *reinterpret_cast<const float4*>(kv_s + j * p.v_stride + tx * 4 + 64 * c);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            if (is_hidden(prob[i])) continue;
            acc[i][c][0] = fmaf(prob[i], value.x, acc[i][c][0]);
            acc[i][c][1] = fmaf(prob[i], value.y, acc[i][c][1]);
            acc[i][c][2] = fmaf(prob[i], value.z, acc[i][c][2]);
            acc[i][c][3] = fmaf(prob[i], value.w, acc[i][c][3]);
          }
        }
      }
    }
    __syncthreads();  // V, the probabilities and the key codes are read
    tile = next_visible_tile(p, t, tile + 1, qmin, qmax, code_lo, code_hi, full);
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!query_ok[i]) continue;
    const int vec = ty + 16 * i;
    const int64_t base = (static_cast<int64_t>(t.row_begin + vec / p.heads_per_block) * p.query_heads +
                          h.head_begin + vec % p.heads_per_block) *
                         dv_model;
    const float inv_sum = 1.0f / running_sum[i];
#pragma unroll
    for (int c = 0; c < kDvChunks; ++c) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int dv = tx * 4 + 64 * c + e;
        if (dv < dv_model)
          store_out(p, base + dv, finish_value(saw_key[i], running_sum[i], inv_sum, acc[i][c][e]));
      }
    }
  }
}

// ================================================================================================= MMA
// kernel

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes from global to shared memory, or 16 zero bytes where !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

// c[16x8] += a[16x16] * b[16x8], bf16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as bf16 (round to nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return static_cast<uint32_t>(__bfloat16_as_ushort(pair.x)) |
         (static_cast<uint32_t>(__bfloat16_as_ushort(pair.y)) << 16);
}

// Whether any of eight bf16 values is inf or NaN (all exponent bits set), two halves per compare.
__device__ __forceinline__ bool has_nonfinite_bf16(uint4 w) {
  constexpr unsigned kExponents = 0x7f807f80u;
  return (__vcmpeq2(w.x & kExponents, kExponents) | __vcmpeq2(w.y & kExponents, kExponents) |
          __vcmpeq2(w.z & kExponents, kExponents) | __vcmpeq2(w.w & kExponents, kExponents)) != 0;
}

// The 16-byte chunks of a [rows][chunks] tile that thread `tid` of kMmaThreads copies: chunk tid + 128 i,
// walked as (row, col) without a division per chunk.
struct ChunkWalk {
  int row, col, row_step, col_step, chunks;
  __device__ ChunkWalk(int tid, int chunks_per_row)
      : row(tid / chunks_per_row),
        col(tid % chunks_per_row),
        row_step(kMmaThreads / chunks_per_row),
        col_step(kMmaThreads % chunks_per_row),
        chunks(chunks_per_row) {}
  __device__ void next() {
    row += row_step;
    col += col_step;
    if (col >= chunks) {
      col -= chunks;
      ++row;
    }
  }
};

// kDvTiles: value-dim tiles of 8 held per thread (value_dim <= 8 * kDvTiles, a multiple of 16).
template <int kDvTiles>
__global__ void __launch_bounds__(kMmaThreads) attention_mma(Params p) {
  extern __shared__ uint4 mma_shared[];
  const int q_stride = p.q_stride;  // head_dim + 8 bf16: rows an odd number of 16-byte units apart
  const int v_stride = p.v_stride;  // value_dim + 8
  uint16_t* q_s = reinterpret_cast<uint16_t*>(mma_shared);            // [kVectors][q_stride]
  uint16_t* k_s = q_s + kVectors * q_stride;                          // [2][kKeys][q_stride]
  uint16_t* v_s = k_s + 2 * kKeys * q_stride;                         // [2][kKeys][v_stride]
  float* p_s = reinterpret_cast<float*>(v_s + 2 * kKeys * v_stride);  // [4 warps][16][kMmaProbStride]
  __shared__ Tile tile_info;
  __shared__ int q_code[kVectors];
  __shared__ int q_valid[kVectors];
  __shared__ int k_code[2][kKeys];
  __shared__ int q_bounds[2];

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int g = lane >> 2;  // the fragment row (and row + 8) this thread holds
  const int t4 = lane & 3;  // its column pair
  const Heads h = block_heads(p);
  if (warp == 0) {
    find_tile(p, static_cast<int>(blockIdx.x), &tile_info);
    if (tile_info.sequence >= 0) query_codes(p, tile_info, h, q_code, q_valid, q_bounds);
  }
  __syncthreads();
  const Tile t = tile_info;
  if (t.sequence < 0) return;

  const uint16_t* q = static_cast<const uint16_t*>(p.q);
  const uint16_t* k = static_cast<const uint16_t*>(p.k);
  const uint16_t* v = static_cast<const uint16_t*>(p.v);
  const int d_model = p.head_dim;
  const int dv_model = p.value_dim;
  const int d_chunks = d_model / 8;  // 16-byte chunks per row
  const int dv_chunks = dv_model / 8;

  for (ChunkWalk c(tid, d_chunks); c.row < kVectors; c.next()) {
    const int vec = c.row;
    const int col = c.col;
    const bool ok = q_valid[vec] != 0;
    const uint16_t* src =
        ok ? q +
                 (static_cast<int64_t>(t.row_begin + vec / p.heads_per_block) * p.query_heads + h.head_begin +
                  vec % p.heads_per_block) *
                     d_model +
                 col * 8
           : q;
    cp_async_16(q_s + vec * q_stride + col * 8, src, ok);
  }
  // K and V of key tile `tile` into buffer `buf`, rows past the sequence's keys zero-filled.
  auto load_tile = [&](int tile, int buf) {
    const int key0 = t.key_begin + tile * kKeys;
    const int keys = min(kKeys, t.key_count - tile * kKeys);
    for (ChunkWalk c(tid, d_chunks); c.row < kKeys; c.next()) {
      const int j = c.row;
      const int col = c.col;
      const bool ok = j < keys;
      const uint16_t* src =
          ok ? k + (static_cast<int64_t>(key0 + j) * p.kv_heads + h.kv_head) * d_model + col * 8 : k;
      cp_async_16(k_s + (buf * kKeys + j) * q_stride + col * 8, src, ok);
    }
    for (ChunkWalk c(tid, dv_chunks); c.row < kKeys; c.next()) {
      const int j = c.row;
      const int col = c.col;
      const bool ok = j < keys;
      const uint16_t* src =
          ok ? v + (static_cast<int64_t>(key0 + j) * p.kv_heads + h.kv_head) * dv_model + col * 8 : v;
      cp_async_16(v_s + (buf * kKeys + j) * v_stride + col * 8, src, ok);
    }
  };

  const int qmin = q_bounds[0];
  const int qmax = q_bounds[1];
  const int tiles = (t.key_count + kKeys - 1) / kKeys;
  int code_lo = 0;
  int code_hi = 0;
  bool full = false;
  int tile = next_visible_tile(p, t, 0, qmin, qmax, code_lo, code_hi, full);
  if (tile < tiles) {
    load_tile(tile, 0);
    if (warp == 0) {
      k_code[0][lane] = code_lo;
      k_code[0][lane + 32] = code_hi;
    }
  }
  cp_async_commit();

  const int vec0 = warp * 16 + g;  // this thread's vectors: vec0 and vec0 + 8
  bool query_ok[2];
  int query_code[2];
  float running_max[2];
  float running_sum[2];
  bool saw_key[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    query_ok[r] = q_valid[vec0 + 8 * r] != 0;
    query_code[r] = q_code[vec0 + 8 * r];
    running_max[r] = -INFINITY;
    running_sum[r] = 0.0f;
    saw_key[r] = false;
  }
  float o[kDvTiles][4];
#pragma unroll
  for (int n = 0; n < kDvTiles; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
  }

  int buf = 0;
  while (tile < tiles) {
    const int keys = min(kKeys, t.key_count - tile * kKeys);
    int next_lo = 0;
    int next_hi = 0;
    bool next_full = false;
    const int next = next_visible_tile(p, t, tile + 1, qmin, qmax, next_lo, next_hi, next_full);
    if (next < tiles) {
      load_tile(next, buf ^ 1);
      if (warp == 0) {
        k_code[buf ^ 1][lane] = next_lo;
        k_code[buf ^ 1][lane + 32] = next_hi;
      }
    }
    cp_async_commit();
    cp_async_wait<1>();  // this tile's copies (this thread's) have landed
    // Each thread checks the V chunks it copied itself (visible to it after the wait); the barrier then makes
    // every copy visible to all.
    bool bad = false;
    for (ChunkWalk c(tid, dv_chunks); c.row < keys; c.next()) {
      bad |= has_nonfinite_bf16(
          *reinterpret_cast<const uint4*>(v_s + (buf * kKeys + c.row) * v_stride + c.col * 8));
    }
    const bool nonfinite = __syncthreads_or(bad) != 0;

    // S[16 x 64] for the warp's vectors; s[n] is the 16 x 8 tile of keys 8n..8n+7.
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
    }
    const uint16_t* k_tile = k_s + buf * kKeys * q_stride;
    for (int d0 = 0; d0 < d_model; d0 += 16) {
      uint32_t a[4];
      ldmatrix_x4(a, q_s + (warp * 16 + (lane & 15)) * q_stride + d0 + (lane >> 4) * 8);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t b[4];
        ldmatrix_x4(
            b, k_tile + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * q_stride + d0 + ((lane >> 3) & 1) * 8);
        mma_bf16(s[2 * np], a, b[0], b[1]);
        mma_bf16(s[2 * np + 1], a, b[2], b[3]);
      }
    }

    // Softmax: element e of s[n] is vector vec0 + 8 (e / 2), key 8n + 2 t4 + e % 2; a vector's 64 scores are
    // spread over the 4 lanes of a quad (xor masks 1, 2). s becomes the probabilities.
    const int* codes = k_code[buf];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      bool visible[8][2];
      bool any = false;
      float tile_max = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int key = 8 * n + 2 * t4 + e;
          visible[n][e] = full || (query_ok[r] && key < keys && code_sees(p, query_code[r], codes[key]));
          s[n][2 * r + e] = softcapped(p, s[n][2 * r + e]);
          if (visible[n][e]) {
            any = true;
            tile_max = max_keep_nan(tile_max, s[n][2 * r + e]);
          }
        }
      }
#pragma unroll
      for (int mask = 1; mask <= 2; mask <<= 1) {
        any = __shfl_xor_sync(kFullMask, static_cast<int>(any), mask) != 0 || any;
        tile_max = max_keep_nan(tile_max, __shfl_xor_sync(kFullMask, tile_max, mask));
      }
      const Step step = softmax_step<true>(any, tile_max, running_max[r]);
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float prob = __uint_as_float(kHiddenBits);
          if (visible[n][e]) {
            prob = step.live ? exp_of<true>(s[n][2 * r + e] - step.new_max) : 0.0f;
            sum += prob;
          }
          s[n][2 * r + e] = prob;
        }
      }
#pragma unroll
      for (int mask = 1; mask <= 2; mask <<= 1) sum += __shfl_xor_sync(kFullMask, sum, mask);
      if (any) saw_key[r] = true;
      if (step.live) {
        running_max[r] = step.new_max;
        running_sum[r] = running_sum[r] * step.correction + sum;
#pragma unroll
        for (int n = 0; n < kDvTiles; ++n) {
          o[n][2 * r] *= step.correction;
          o[n][2 * r + 1] *= step.correction;
        }
      }
    }

    const uint16_t* v_tile = v_s + buf * kKeys * v_stride;
    if (!nonfinite) {
      // O += P V: the S accumulators of keys 16kk..16kk+15 are exactly the A fragment of P for that k-step.
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        if (16 * kk >= keys) break;
        const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                               pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < kDvTiles / 2; ++dp) {
          if (16 * dp < dv_model) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, v_tile + (16 * kk + ((lane >> 3) & 1) * 8 + (lane & 7)) * v_stride +
                                     16 * dp + (lane >> 4) * 8);
            mma_bf16(o[2 * dp], a, b[0], b[1]);
            mma_bf16(o[2 * dp + 1], a, b[2], b[3]);
          }
        }
      }
    } else {
      // Some V value is inf or NaN: f32 products key by key, hidden keys skipped.
      float* probs = p_s + warp * 16 * kMmaProbStride;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          probs[(g + 8 * (e >> 1)) * kMmaProbStride + 8 * n + 2 * t4 + (e & 1)] = s[n][e];
      }
      __syncwarp();
#pragma unroll
      for (int n = 0; n < kDvTiles; ++n) {
        if (8 * n >= dv_model) continue;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float* row = probs + (g + 8 * (e >> 1)) * kMmaProbStride;
          const int dv = 8 * n + 2 * t4 + (e & 1);
          float total = o[n][e];
          for (int j = 0; j < keys; ++j) {
            if (is_hidden(row[j])) continue;
            total = fmaf(row[j], bf16_bits_to_f32(v_tile[j * v_stride + dv]), total);
          }
          o[n][e] = total;
        }
      }
      __syncwarp();
    }
    __syncthreads();  // this buffer and its key codes are read: the next iteration refills them
    tile = next;
    full = next_full;
    buf ^= 1;
  }
  cp_async_wait<0>();

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!query_ok[r]) continue;
    const int vec = vec0 + 8 * r;
    const int64_t base = (static_cast<int64_t>(t.row_begin + vec / p.heads_per_block) * p.query_heads +
                          h.head_begin + vec % p.heads_per_block) *
                         dv_model;
    const float inv_sum = 1.0f / running_sum[r];
#pragma unroll
    for (int n = 0; n < kDvTiles; ++n) {
      if (8 * n >= dv_model) continue;
      const int dv = 8 * n + 2 * t4;
      const float lo = finish_value(saw_key[r], running_sum[r], inv_sum, o[n][2 * r]);
      const float hi = finish_value(saw_key[r], running_sum[r], inv_sum, o[n][2 * r + 1]);
      if (p.out_bf16) {
        const uint32_t pair =
            static_cast<uint32_t>(f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16);
        *reinterpret_cast<uint32_t*>(static_cast<uint16_t*>(p.out) + base + dv) = pair;
      } else {
        *reinterpret_cast<float2*>(static_cast<float*>(p.out) + base + dv) = make_float2(lo, hi);
      }
    }
  }
}

// ================================================================================================== launcher

// Raises `kernel`'s dynamic shared memory limit on the current device to `bytes` unless a launch raised it
// that far already: the attribute is a driver call, and every layer of every forward launches these kernels.
cudaError_t allow_shared_bytes(void (*kernel)(Params), size_t bytes) {
  static std::mutex mutex;
  static std::map<std::pair<void (*)(Params), int>, size_t> allowed;
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  const std::lock_guard<std::mutex> lock(mutex);
  size_t& limit = allowed[{kernel, device}];
  if (bytes <= limit) return cudaSuccess;
  status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status == cudaSuccess) limit = bytes;
  return status;
}

cudaError_t launch_kernel(void (*kernel)(Params), dim3 grid, int threads, size_t shared_bytes,
                          cudaStream_t stream, const Params& p) {
  const cudaError_t status = allow_shared_bytes(kernel, shared_bytes);
  if (status != cudaSuccess) return status;
  kernel<<<grid, threads, shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

template <DType In>
cudaError_t launch_simt(cudaStream_t stream, dim3 grid, Params p) {
  const int d_padded = (p.head_dim + 3) & ~3;
  p.q_stride = (d_padded / 4) % 2 == 1 ? d_padded : d_padded + 4;  // an odd number of float4s
  const int chunks = (p.value_dim + 63) / 64;
  p.v_stride = chunks * 64;
  const int kv = p.q_stride > p.v_stride ? p.q_stride : p.v_stride;
  const size_t shared_bytes =
      sizeof(float) * (static_cast<size_t>(kVectors) * p.q_stride + static_cast<size_t>(kKeys) * kv +
                       static_cast<size_t>(kVectors) * kSimtProbStride);
  switch (chunks) {
    case 1:
      return launch_kernel(attention_simt<In, 1>, grid, kSimtThreads, shared_bytes, stream, p);
    case 2:
      return launch_kernel(attention_simt<In, 2>, grid, kSimtThreads, shared_bytes, stream, p);
    case 3:
      return launch_kernel(attention_simt<In, 3>, grid, kSimtThreads, shared_bytes, stream, p);
    case 4:
      return launch_kernel(attention_simt<In, 4>, grid, kSimtThreads, shared_bytes, stream, p);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launch_mma(cudaStream_t stream, dim3 grid, Params p) {
  p.q_stride = p.head_dim + 8;
  p.v_stride = p.value_dim + 8;
  const size_t shared_bytes = sizeof(uint16_t) * (static_cast<size_t>(kVectors) * p.q_stride +
                                                  static_cast<size_t>(2 * kKeys) * p.q_stride +
                                                  static_cast<size_t>(2 * kKeys) * p.v_stride) +
                              sizeof(float) * (kMmaThreads / 32) * 16 * kMmaProbStride;
  if (p.value_dim <= 64) return launch_kernel(attention_mma<8>, grid, kMmaThreads, shared_bytes, stream, p);
  if (p.value_dim <= 128) return launch_kernel(attention_mma<16>, grid, kMmaThreads, shared_bytes, stream, p);
  return launch_kernel(attention_mma<32>, grid, kMmaThreads, shared_bytes, stream, p);
}

}  // namespace

cudaError_t launch_attention(cudaStream_t stream, const AttentionProblem& a) {
  if (a.query_rows == 0) return cudaSuccess;
  const bool types_ok = (a.qkv_dtype == DType::F32 || a.qkv_dtype == DType::BF16) &&
                        (a.out_dtype == DType::F32 || a.out_dtype == DType::BF16);
  if (!types_ok || a.head_dim < 1 || a.head_dim > kMaxAttentionHeadDim || a.value_dim < 1 ||
      a.value_dim > kMaxAttentionHeadDim || a.kv_heads < 1 || a.query_heads % a.kv_heads != 0 ||
      a.sequences < 1 || a.query_rows > INT_MAX || a.key_rows > INT_MAX || a.sequences > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  Params p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.out = a.out;
  p.query_offsets = a.query_offsets;
  p.key_offsets = a.key_offsets;
  p.query_positions = a.query_positions;
  p.key_positions = a.key_positions;
  p.sequences = static_cast<int>(a.sequences);
  p.query_rows = static_cast<int>(a.query_rows);
  p.key_rows = static_cast<int>(a.key_rows);
  p.query_heads = static_cast<int>(a.query_heads);
  p.kv_heads = static_cast<int>(a.kv_heads);
  p.group = static_cast<int>(a.query_heads / a.kv_heads);
  p.heads_per_block = p.group < kVectors ? p.group : kVectors;
  p.head_chunks = (p.group + p.heads_per_block - 1) / p.heads_per_block;
  p.rows_per_tile = kVectors / p.heads_per_block;
  p.head_dim = static_cast<int>(a.head_dim);
  p.value_dim = static_cast<int>(a.value_dim);
  p.scale = a.scale;
  p.softcap = a.softcap;
  p.visibility = a.visibility.kind;
  p.block_size = a.visibility.block_size;
  p.block_size32 = a.visibility.block_size > 0 && a.visibility.block_size <= INT_MAX
                       ? static_cast<int>(a.visibility.block_size)
                       : 0;
  p.window = a.visibility.window;
  p.out_bf16 = a.out_dtype == DType::BF16;

  // Every sequence's tiles but its last are full, so the batch has at most rows / rows_per_tile + sequences
  // tiles, and never more than rows; blocks past the last tile find nothing and return.
  const int64_t tiles = a.query_rows / p.rows_per_tile + a.sequences;
  const int64_t grid_x = tiles < a.query_rows ? tiles : a.query_rows;
  const int64_t grid_y = a.kv_heads * p.head_chunks;
  if (grid_x > INT_MAX || grid_y > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));

  const bool tensor_cores = a.qkv_dtype == DType::BF16 && a.head_dim % 16 == 0 && a.value_dim % 16 == 0 &&
                            aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.out);
  if (tensor_cores) return launch_mma(stream, grid, p);
  if (a.qkv_dtype == DType::BF16) return launch_simt<DType::BF16>(stream, grid, p);
  return launch_simt<DType::F32>(stream, grid, p);
}

}  // namespace dlm::cuda
