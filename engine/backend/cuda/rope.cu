// rope and rope_qkv (kernels; the ops are in rope.cpp): a block per token, or per part of a token's heads
// where the tokens are too few to fill the device. The block copies its share of rope_qkv's v heads first
// (they need no table), then puts cos and sin of the token's angles in shared memory, computed as the CPU
// does (the angle rounded to f32 as HF computes position * inv_freq, then cos and sin in double, times
// attention_factor, rounded to f32), then rotates the pairs of every head of its targets: rope's x, or
// rope_qkv's q and k heads, which share the table. Each element is read and written by one thread, so an
// output may be its input. Elements are f32 or bf16 (widened on load, each result rounded once); inputs'
// tokens may lie further apart than outputs'.
//
// Half-split pairs (i, i + rotary_dim / 2) are handled kCount frequencies at a time, 16 bytes per access,
// where every address and width allows it; interleaved pairs, and the rest, one pair at a time.
#include <algorithm>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

// Frequencies handled per round of the shared cos/sin table (16 KiB); larger rotary dims take several rounds.
constexpr int kTableFrequencies = 2048;

template <DType A>
struct Heads {
  const typename Storage<A>::T* in = nullptr;
  int64_t in_stride = 0;  // elements between tokens
  typename Storage<A>::T* out = nullptr;
  int64_t out_stride = 0;
  int64_t heads = 0;
};

template <DType A>
struct RopeJob {
  Heads<A> rotated[2];
  int rotated_count = 0;
  Heads<A> copied;  // heads == 0: nothing to copy
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  int64_t half = 0;  // rotary_dim / 2
  double factor = 1.0;
  int64_t tokens = 0;
  int64_t head_dim = 0;
};

// The heads [begin, end) of a target that a block handles.
struct HeadRange {
  int64_t begin = 0, end = 0;
  __device__ int count() const { return static_cast<int>(end - begin); }
};

template <RopeLayout kLayout, DType A, int kCount>
__device__ void rotate(const Heads<A>& target, HeadRange range, int64_t t, int64_t first, int64_t count,
                       int64_t half, int64_t head_dim, const float* cos_table, const float* sin_table) {
  const typename Storage<A>::T* in = target.in + t * target.in_stride + range.begin * head_dim;
  typename Storage<A>::T* out = target.out + t * target.out_stride + range.begin * head_dim;
  const int row_groups = static_cast<int>(count / kCount);  // 32-bit: a 64-bit division costs far more
  const int groups = range.count() * row_groups;
  for (int p = static_cast<int>(threadIdx.x); p < groups; p += static_cast<int>(blockDim.x)) {
    const int h = p / row_groups;
    const int j = (p - h * row_groups) * kCount;
    const int64_t i = first + j;
    const int64_t a_at = h * head_dim + (kLayout == RopeLayout::Interleaved ? 2 * i : i);
    const int64_t b_at = a_at + (kLayout == RopeLayout::Interleaved ? 1 : half);
    float a[kCount], b[kCount], ra[kCount], rb[kCount];
    load_group<A, kCount>(in, a_at, a);
    load_group<A, kCount>(in, b_at, b);
#pragma unroll
    for (int e = 0; e < kCount; ++e) {
      const float c = cos_table[j + e];
      const float s = sin_table[j + e];
      ra[e] = __fsub_rn(__fmul_rn(a[e], c), __fmul_rn(b[e], s));
      rb[e] = __fadd_rn(__fmul_rn(b[e], c), __fmul_rn(a[e], s));
    }
    store_group<A, kCount>(out, a_at, ra);
    store_group<A, kCount>(out, b_at, rb);
  }
}

// Features [from, head_dim) of the heads in `range` of `target`'s token t copied, kCount at a time where from
// and head_dim allow it.
template <DType A, int kCount>
__device__ void copy_features(const Heads<A>& target, HeadRange range, int64_t t, int64_t from,
                              int64_t head_dim) {
  const typename Storage<A>::T* in = target.in + t * target.in_stride + range.begin * head_dim;
  typename Storage<A>::T* out = target.out + t * target.out_stride + range.begin * head_dim;
  if (in == out) return;
  const int64_t rest = head_dim - from;
  const int row_groups = static_cast<int>(rest / kCount);
  const int groups = range.count() * row_groups;
  for (int p = static_cast<int>(threadIdx.x); p < groups; p += static_cast<int>(blockDim.x)) {
    const int h = p / row_groups;
    const int64_t at = h * head_dim + from + (p - h * row_groups) * kCount;
    float v[kCount];
    load_group<A, kCount>(in, at, v);
    store_group<A, kCount>(out, at, v);
  }
}

// The heads of `target` among the block's share [begin, end) of the job's heads, `target` starting at head
// `offset` of the job's list (rotated targets, then the copied one).
template <DType A>
__device__ HeadRange share_of(const Heads<A>& target, int64_t offset, int64_t begin, int64_t end) {
  const int64_t from = begin > offset ? begin - offset : 0;
  const int64_t to = end - offset < target.heads ? end - offset : target.heads;
  return {from, to > from ? to : from};
}

// Grid: x over tokens, y over parts of the job's heads.
template <RopeLayout kLayout, DType A, int kCount>
__global__ void rope_kernel(RopeJob<A> job) {
  wait_for_previous_kernel();
  __shared__ float cos_table[kTableFrequencies];
  __shared__ float sin_table[kTableFrequencies];
  int64_t all_heads = job.copied.heads;
  for (int r = 0; r < job.rotated_count; ++r) all_heads += job.rotated[r].heads;
  const int64_t begin = all_heads * blockIdx.y / gridDim.y;
  const int64_t end = all_heads * (blockIdx.y + 1) / gridDim.y;
  HeadRange rotated[2];
  int64_t offset = 0;
  bool rotates = false;
  for (int r = 0; r < job.rotated_count; ++r) {
    rotated[r] = share_of(job.rotated[r], offset, begin, end);
    rotates = rotates || rotated[r].end > rotated[r].begin;
    offset += job.rotated[r].heads;
  }
  const HeadRange copied = share_of(job.copied, offset, begin, end);
  for (int64_t t = blockIdx.x; t < job.tokens; t += gridDim.x) {
    // The copies first: they need no table, so their memory traffic overlaps the table's cos and sin.
    copy_features<A, kCount>(job.copied, copied, t, 0, job.head_dim);
    const float position = static_cast<float>(job.positions[t]);
    for (int64_t first = 0; rotates && first < job.half; first += kTableFrequencies) {
      const int64_t count = job.half - first < kTableFrequencies ? job.half - first : kTableFrequencies;
      __syncthreads();  // the previous round's table is no longer read
      for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
        const double angle = __fmul_rn(position, job.inv_freq[first + i]);
        cos_table[i] = static_cast<float>(cos(angle) * job.factor);
        sin_table[i] = static_cast<float>(sin(angle) * job.factor);
      }
      __syncthreads();
      for (int r = 0; r < job.rotated_count; ++r) {
        rotate<kLayout, A, kCount>(job.rotated[r], rotated[r], t, first, count, job.half, job.head_dim,
                                   cos_table, sin_table);
      }
    }
    for (int r = 0; r < job.rotated_count; ++r)
      copy_features<A, 1>(job.rotated[r], rotated[r], t, 2 * job.half, job.head_dim);
  }
}

// Whether every access of the job can move kGroup<A> elements: 16-byte aligned pointers, and strides, head
// size and the half-split width multiples of the group.
template <DType A>
bool takes_groups(const RopeJob<A>& job, RopeLayout layout) {
  constexpr int64_t kCount = kGroup<A>;
  if (layout != RopeLayout::HalfSplit || job.half % kCount != 0 || job.head_dim % kCount != 0) return false;
  const auto fits = [&](const Heads<A>& h) {
    return h.heads == 0 ||
           (aligned16(h.in) && aligned16(h.out) && h.in_stride % kCount == 0 && h.out_stride % kCount == 0);
  };
  for (int r = 0; r < job.rotated_count; ++r) {
    if (!fits(job.rotated[r])) return false;
  }
  return fits(job.copied);
}

// Blocks a call aims for: a few per multiprocessor. Fewer tokens than this split their heads across blocks
// (each computes its token's cos/sin table).
constexpr int64_t kWantedBlocks = 256;

template <RopeLayout kLayout, DType A, int kCount>
cudaError_t launch(cudaStream_t stream, const RopeJob<A>& job) {
  int64_t heads = job.copied.heads;
  for (int r = 0; r < job.rotated_count; ++r) heads += job.rotated[r].heads;
  const int64_t parts = std::clamp<int64_t>(kWantedBlocks / job.tokens, 1, std::max<int64_t>(heads, 1));
  const int64_t part_heads = (heads + parts - 1) / parts;
  // A thread for each rotated pair group or copied group of a head (half a head's groups), in whole warps
  // from 64 (a table round for the common rotary sizes) to 256: a block waits for its cos/sin table, so
  // several blocks per multiprocessor keep it busy meanwhile.
  const int64_t work = part_heads * job.head_dim / (2 * kCount);
  const int threads = static_cast<int>(std::clamp<int64_t>((work + 31) / 32 * 32, 64, 256));
  const dim3 grid(row_blocks(job.tokens), static_cast<unsigned int>(parts));
  launch_overlapping(rope_kernel<kLayout, A, kCount>, grid, threads, 0, stream, job);
  return cudaGetLastError();
}

template <DType A>
cudaError_t launch_job(cudaStream_t stream, const RopeJob<A>& job, RopeLayout layout) {
  if (job.tokens == 0 || job.head_dim == 0) return cudaSuccess;
  if (takes_groups(job, layout)) return launch<RopeLayout::HalfSplit, A, kGroup<A>>(stream, job);
  if (layout == RopeLayout::Interleaved) return launch<RopeLayout::Interleaved, A, 1>(stream, job);
  return launch<RopeLayout::HalfSplit, A, 1>(stream, job);
}

template <DType A>
RopeJob<A> job_for(const int32_t* positions, const float* inv_freq, int64_t rotary_dim,
                   float attention_factor, int64_t tokens, int64_t head_dim) {
  RopeJob<A> job;
  job.positions = positions;
  job.inv_freq = inv_freq;
  job.half = rotary_dim / 2;
  job.factor = attention_factor;
  job.tokens = tokens;
  job.head_dim = head_dim;
  return job;
}

template <DType A>
Heads<A> heads_of(const void* in, int64_t in_stride, void* out, int64_t heads, int64_t head_dim) {
  using T = typename Storage<A>::T;
  return {static_cast<const T*>(in), in_stride, static_cast<T*>(out), heads * head_dim, heads};
}

template <DType A>
cudaError_t launch_rope_as(cudaStream_t stream, const void* x, int64_t x_stride, const int32_t* positions,
                           const float* inv_freq, RopeLayout layout, int64_t rotary_dim,
                           float attention_factor, int64_t tokens, int64_t heads, int64_t head_dim,
                           void* out) {
  RopeJob<A> job = job_for<A>(positions, inv_freq, rotary_dim, attention_factor, tokens, head_dim);
  job.rotated[0] = heads_of<A>(x, x_stride, out, heads, head_dim);
  job.rotated_count = heads > 0 ? 1 : 0;
  return launch_job(stream, job, layout);
}

template <DType A>
cudaError_t launch_rope_qkv_as(cudaStream_t stream, const void* qkv, int64_t qkv_stride,
                               const int32_t* positions, const float* inv_freq, RopeLayout layout,
                               int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t q_heads,
                               int64_t kv_heads, int64_t head_dim, void* q, void* k, void* v) {
  RopeJob<A> job = job_for<A>(positions, inv_freq, rotary_dim, attention_factor, tokens, head_dim);
  const auto* columns = static_cast<const typename Storage<A>::T*>(qkv);
  job.rotated[0] = heads_of<A>(columns, qkv_stride, q, q_heads, head_dim);
  job.rotated[1] = heads_of<A>(columns + q_heads * head_dim, qkv_stride, k, kv_heads, head_dim);
  job.rotated_count = 2;
  job.copied = heads_of<A>(columns + (q_heads + kv_heads) * head_dim, qkv_stride, v, kv_heads, head_dim);
  return launch_job(stream, job, layout);
}

}  // namespace

cudaError_t launch_rope(cudaStream_t stream, const void* x, int64_t x_stride, DType x_dtype,
                        const int32_t* positions, const float* inv_freq, RopeLayout layout,
                        int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t heads,
                        int64_t head_dim, void* out) {
  switch (x_dtype) {
    case DType::F32:
      return launch_rope_as<DType::F32>(stream, x, x_stride, positions, inv_freq, layout, rotary_dim,
                                        attention_factor, tokens, heads, head_dim, out);
    case DType::BF16:
      return launch_rope_as<DType::BF16>(stream, x, x_stride, positions, inv_freq, layout, rotary_dim,
                                         attention_factor, tokens, heads, head_dim, out);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launch_rope_qkv(cudaStream_t stream, const void* qkv, int64_t qkv_stride, DType dtype,
                            const int32_t* positions, const float* inv_freq, RopeLayout layout,
                            int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t q_heads,
                            int64_t kv_heads, int64_t head_dim, void* q, void* k, void* v) {
  switch (dtype) {
    case DType::F32:
      return launch_rope_qkv_as<DType::F32>(stream, qkv, qkv_stride, positions, inv_freq, layout, rotary_dim,
                                            attention_factor, tokens, q_heads, kv_heads, head_dim, q, k, v);
    case DType::BF16:
      return launch_rope_qkv_as<DType::BF16>(stream, qkv, qkv_stride, positions, inv_freq, layout, rotary_dim,
                                             attention_factor, tokens, q_heads, kv_heads, head_dim, q, k, v);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
