// attention_combine: merges the partial softmax that the blocks sharing a query block's keys wrote
// (attention_device.cuh, Params::splits) into the output, one warp per query vector.
//
// A share's accumulators and sum are relative to its own running maximum m_s; the merged ones are relative to
// M = the largest m_s, so share s is scaled by exp(m_s - M), as the kernels rescale when a later key tile
// raises the maximum. The special cases follow the kernels': a share that saw no key, or whose visible
// scores were all -inf (m_s = -inf, sum 0), adds no probability mass, but its accumulators still carry the
// NaN that 0 * inf made of a non-finite V; a NaN maximum makes the row NaN; a vector that saw no key in any
// share gets zeros, one that saw keys but no finite score gets NaN.
#include <cuda_runtime.h>

#include "engine/backend/cuda/attention_device.cuh"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda::attention_detail {
namespace {

constexpr int kCombineWarps = 8;

__global__ void __launch_bounds__(kCombineWarps * 32) attention_combine(Params p) {
  wait_for_previous_kernel();
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t vectors = static_cast<int64_t>(p.query_rows) * p.query_heads;
  const int64_t vector = static_cast<int64_t>(blockIdx.x) * kCombineWarps + (threadIdx.x >> 5);
  if (vector >= vectors) return;
  // Rows outside every sequence are left alone, as the kernels leave them without splits.
  const int row = static_cast<int>(vector / p.query_heads);
  const int first_row = clamp_int(p.query_offsets[0], 0, p.query_rows);
  const int end_row = clamp_int(p.query_offsets[p.sequences], first_row, p.query_rows);
  if (row < first_row || row >= end_row) return;

  float merged_max = -INFINITY;
  bool saw_key = false;
  for (int s = 0; s < p.splits; ++s) {
    const float4 stats = p.split_stats[s * vectors + vector];
    saw_key = saw_key || stats.z != 0.0f;
    if (!(stats.x == -INFINITY)) merged_max = max_keep_nan(merged_max, stats.x);
  }
  // Each share's factor: 1 for one without probability mass (its accumulators hold 0 or NaN).
  auto factor = [&](float share_max) { return share_max == -INFINITY ? 1.0f : expf(share_max - merged_max); };
  float sum = 0.0f;
  for (int s = 0; s < p.splits; ++s) {
    const float4 stats = p.split_stats[s * vectors + vector];
    sum = fmaf(stats.y, factor(stats.x), sum);
  }
  const float inv_sum = 1.0f / sum;
  for (int dv = lane; dv < p.value_dim; dv += 32) {
    float acc = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
      const int64_t slot = s * vectors + vector;
      acc = fmaf(p.split_acc[slot * p.value_dim + dv], factor(p.split_stats[slot].x), acc);
    }
    store_out(p, vector * p.value_dim + dv, finish_value(saw_key, sum, inv_sum, acc));
  }
}

}  // namespace

cudaError_t launch_combine(cudaStream_t stream, const Params& p) {
  const int64_t vectors = static_cast<int64_t>(p.query_rows) * p.query_heads;
  const int64_t blocks = (vectors + kCombineWarps - 1) / kCombineWarps;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  launch_overlapping(attention_combine, static_cast<unsigned>(blocks), kCombineWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace dlm::cuda::attention_detail
