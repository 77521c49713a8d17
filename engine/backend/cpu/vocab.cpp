// Reductions over the vocabulary axis of logits [N, V], one row per task.
//
// NaN ranks above every number, as in torch.argmax and torch.topk: a row holding a NaN has its first NaN as
// argmax and NaN statistics. Statistics follow torch.softmax otherwise too: +inf logits, or a row of -inf
// only, give NaN; -inf logits next to finite ones get probability 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Four-float vectors (GCC/Clang vector extensions): the compiler does not vectorize a float max reduction by
// itself, since reordering it would change which NaN or signed zero comes out.
using Vec4 = float __attribute__((vector_size(16)));
using Mask4 = int32_t __attribute__((vector_size(16)));

Vec4 load4(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The largest non-NaN value of x[0, n) (-inf if none); sets *has_nan when a NaN occurs.
float max_skipping_nan(const float* x, int64_t n, bool* has_nan) {
  Vec4 lane_max[2] = {Vec4{} + kNegInf, Vec4{} + kNegInf};  // two chains hide the latency of max
  Mask4 lane_nan[2] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 2; ++j) {
      const Vec4 value = load4(x + i + 4 * j);
      lane_max[j] = value > lane_max[j] ? value : lane_max[j];
      lane_nan[j] |= value != value;
    }
  }
  float best = kNegInf;
  int32_t nan = 0;
  for (int j = 0; j < 2; ++j) {
    for (int lane = 0; lane < 4; ++lane) {
      best = lane_max[j][lane] > best ? lane_max[j][lane] : best;
      nan |= lane_nan[j][lane];
    }
  }
  for (; i < n; ++i) {
    best = x[i] > best ? x[i] : best;
    nan |= static_cast<int32_t>(std::isnan(x[i]));
  }
  *has_nan = nan != 0;
  return best;
}

// The first index of the maximum, NaN counting as the maximum. n >= 1.
int64_t argmax_row(const float* x, int64_t n) {
  bool has_nan = false;
  const float best = max_skipping_nan(x, n, &has_nan);
  if (has_nan) return std::find_if(x, x + n, [](float value) { return std::isnan(value); }) - x;
  return std::find(x, x + n, best) - x;
}

// True if (a, a_index) ranks before (b, b_index): larger first, NaN largest, ties to the lower index.
bool ranks_before(float a, int32_t a_index, float b, int32_t b_index) {
  const bool a_nan = std::isnan(a);
  const bool b_nan = std::isnan(b);
  if (a_nan != b_nan) return a_nan;
  if (!a_nan && a != b) return a > b;
  return a_index < b_index;
}

struct Candidate {
  float value;
  int32_t index;
};

// Keeps the k best of a row in a heap ordered by rank, so its front is the last-ranked entry kept and most
// elements cost one comparison with it.
void top_k_row(const float* x, int64_t n, int64_t k, std::vector<Candidate>& heap, float* values,
               int32_t* indices) {
  auto order = [](const Candidate& a, const Candidate& b) {
    return ranks_before(a.value, a.index, b.value, b.index);
  };
  heap.clear();
  for (int64_t i = 0; i < k; ++i) heap.push_back({x[i], static_cast<int32_t>(i)});
  std::make_heap(heap.begin(), heap.end(), order);
  for (int64_t i = k; i < n; ++i) {
    // A later index loses every tie, so only a strictly larger value (or a NaN over a number) gets in.
    const float worst = heap.front().value;
    const float value = x[i];
    const bool enters = !std::isnan(worst) && (value > worst || std::isnan(value));
    if (!enters) continue;
    std::pop_heap(heap.begin(), heap.end(), order);
    heap.back() = {value, static_cast<int32_t>(i)};
    std::push_heap(heap.begin(), heap.end(), order);
  }
  std::sort_heap(heap.begin(), heap.end(), order);
  for (int64_t i = 0; i < k; ++i) {
    values[i] = heap[i].value;
    indices[i] = heap[i].index;
  }
}

struct RowStats {
  int32_t argmax;
  float max_prob;
  float entropy;
  float margin;
};

// With m the max logit, d_i = x_i - m and Z = sum exp(d_i): p_max = 1 / Z, entropy = log Z - sum exp(d_i) d_i
// / Z, and margin = (1 - exp(d_2)) / Z for the runner-up logit. Every exponent is <= 0, so nothing overflows.
RowStats row_stats(const float* x, int64_t n) {
  const int64_t top = argmax_row(x, n);
  const float m = x[top];
  bool unused_nan = false;
  // The runner-up: the max of everything but the argmax (ties with the argmax give a margin of 0).
  const float second = std::max(max_skipping_nan(x, top, &unused_nan),
                                max_skipping_nan(x + top + 1, n - top - 1, &unused_nan));
  double z = 0.0;
  double weighted = 0.0;  // sum exp(d) d
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - m;
    const float e = std::exp(d);
    z += e;
    if (e > 0.0f) weighted += static_cast<double>(e) * d;  // skips 0 * -inf
  }
  RowStats stats;
  stats.argmax = static_cast<int32_t>(top);
  stats.max_prob = static_cast<float>(1.0 / z);
  stats.entropy = static_cast<float>(std::log(z) - weighted / z);
  // expm1 keeps the margin accurate when the top two logits are close.
  stats.margin = static_cast<float>(-std::expm1(static_cast<double>(second) - m) / z);
  return stats;
}

}  // namespace

void CpuBackend::argmax(const Tensor& logits, const Tensor& out) {
  const float* x = logits.data_as<float>();
  int32_t* result = out.data_as<int32_t>();
  const int64_t vocab = logits.dim(1);
  cpu::parallel_rows(pool(), logits.dim(0), vocab, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)
      result[row] = static_cast<int32_t>(argmax_row(x + row * vocab, vocab));
  });
}

void CpuBackend::top_k(const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) {
  const float* x = logits.data_as<float>();
  float* top_values = values.data_as<float>();
  int32_t* top_indices = indices.data_as<int32_t>();
  const int64_t vocab = logits.dim(1);
  cpu::parallel_rows(pool(), logits.dim(0), vocab, [&](int64_t begin, int64_t end) {
    std::vector<Candidate> heap;
    heap.reserve(static_cast<size_t>(k));
    for (int64_t row = begin; row < end; ++row) {
      top_k_row(x + row * vocab, vocab, k, heap, top_values + row * k, top_indices + row * k);
    }
  });
}

void CpuBackend::vocab_stats(const Tensor& logits, const VocabStats& out) {
  const float* x = logits.data_as<float>();
  int32_t* argmax = out.argmax.data_as<int32_t>();
  float* max_prob = out.max_prob.data_as<float>();
  float* entropy = out.entropy.data_as<float>();
  float* margin = out.margin.data_as<float>();
  const int64_t vocab = logits.dim(1);
  cpu::parallel_rows(pool(), logits.dim(0), vocab, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const RowStats stats = row_stats(x + row * vocab, vocab);
      argmax[row] = stats.argmax;
      max_prob[row] = stats.max_prob;
      entropy[row] = stats.entropy;
      margin[row] = stats.margin;
    }
  });
}

}  // namespace dlm
