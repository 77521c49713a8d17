// attention_simt: the f32 attention kernel, also run for bf16 shapes the tensor-core kernel cannot take
// (attention_device.cuh describes the work and the numerics both kernels share).
//
// 256 threads as 16 x 16; thread (ty, tx) owns query vectors ty + 16 i and keys tx + 16 j (i, j < 4) of the
// 64 x 64 score tile, computed with f32 FMAs from shared memory (float4 reads, rows padded to an odd number
// of 16-byte units, conflict-free), and output columns tx * 4 + 64 c of its four vectors. Q, then K and V in
// turn through one buffer, and the probability tile sit in shared memory (<= 150 KB at head_dim 256).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "engine/backend/cuda/attention_device.cuh"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda::attention_detail {
namespace {

constexpr int kSimtThreads = 256;
constexpr int kSimtProbStride = 80;  // floats per row of the probability tile (conflict-free writes)

// Value dims up to 128 fit 128 registers, so two blocks share a multiprocessor.
template <DType In, int kDvChunks>
__global__ void __launch_bounds__(kSimtThreads, kDvChunks <= 2 ? 2 : 1) attention_simt(Params p) {
  wait_for_previous_kernel();
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
  const TileRange range = block_tile_range(p, t);
  int code_lo = 0;
  int code_hi = 0;
  bool full = false;
  int tile = next_visible_tile(p, t, range.begin, range.end, qmin, qmax, code_lo, code_hi, full);
  while (tile < range.end) {
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
    tile = next_visible_tile(p, t, tile + 1, range.end, qmin, qmax, code_lo, code_hi, full);
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!query_ok[i]) continue;
    const int vec = ty + 16 * i;
    if (p.splits > 1) {
      const int64_t slot = split_slot(p, t, h, vec);
      if (tx == 0) store_split_stats(p, slot, running_max[i], running_sum[i], saw_key[i]);
#pragma unroll
      for (int c = 0; c < kDvChunks; ++c) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int dv = tx * 4 + 64 * c + e;
          if (dv < dv_model) p.split_acc[slot * dv_model + dv] = acc[i][c][e];
        }
      }
      continue;
    }
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

template <DType In>
cudaError_t launch_simt_as(cudaStream_t stream, dim3 grid, Params p) {
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

}  // namespace

cudaError_t launch_simt(cudaStream_t stream, dim3 grid, Params p, DType in) {
  if (in == DType::BF16) return launch_simt_as<DType::BF16>(stream, grid, p);
  return launch_simt_as<DType::F32>(stream, grid, p);
}

}  // namespace dlm::cuda::attention_detail
