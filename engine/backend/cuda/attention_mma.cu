// attention_mma: the tensor-core attention kernel (attention_device.cuh describes the work and the
// numerics both kernels share).
//
// For bf16 with head_dim and value_dim multiples of 16 and 16-byte aligned tensors: 4 warps of 16 vectors
// each; S = Q K^T and O += P V with mma.sync m16n8k16 (bf16 in, f32 accumulate), fragments by ldmatrix (V
// through .trans), P rounded to bf16 as in FlashAttention-2. K/V tiles are double-buffered with cp.async, so
// the next tile loads while this one is computed. A tile whose V holds a non-finite value takes a scalar path
// for P V (P through shared memory, hidden keys skipped), since the tensor cores would make 0 * inf = NaN out
// of hidden keys too.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "engine/backend/cuda/attention_device.cuh"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda::attention_detail {
namespace {

constexpr int kMmaThreads = 128;
constexpr int kMmaProbStride = 68;  // floats per row of the scalar-path probability tile

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
  wait_for_previous_kernel();
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
  const TileRange range = block_tile_range(p, t);
  int code_lo = 0;
  int code_hi = 0;
  bool full = false;
  int tile = next_visible_tile(p, t, range.begin, range.end, qmin, qmax, code_lo, code_hi, full);
  if (tile < range.end) {
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
  while (tile < range.end) {
    const int keys = min(kKeys, t.key_count - tile * kKeys);
    int next_lo = 0;
    int next_hi = 0;
    bool next_full = false;
    const int next = next_visible_tile(p, t, tile + 1, range.end, qmin, qmax, next_lo, next_hi, next_full);
    if (next < range.end) {
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
    if (p.splits > 1) {
      const int64_t slot = split_slot(p, t, h, vec);
      if (t4 == 0) store_split_stats(p, slot, running_max[r], running_sum[r], saw_key[r]);
#pragma unroll
      for (int n = 0; n < kDvTiles; ++n) {
        if (8 * n >= dv_model) continue;
        *reinterpret_cast<float2*>(p.split_acc + slot * dv_model + 8 * n + 2 * t4) =
            make_float2(o[n][2 * r], o[n][2 * r + 1]);
      }
      continue;
    }
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

}  // namespace

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

}  // namespace dlm::cuda::attention_detail
