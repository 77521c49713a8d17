// Scaled dot-product attention over a ragged batch, streaming keys in tiles with an online softmax in f32.
//
// Work is split into tasks of up to kMaxVectors query vectors: a few query rows of one sequence times the
// query heads that share one kv head, so each key and value row read from memory serves all of them.
// Non-finite values follow torch's softmax (a NaN or +inf score makes the row NaN; a row whose visible scores
// are all -inf is NaN), except that keys a query cannot see never contribute, whatever they hold.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"

namespace dlm {
namespace {

constexpr int64_t kKeyTile = 64;
constexpr int64_t kMaxVectors = 32;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The kernels are written once over a vector of floats (GCC/Clang vector extensions) and built twice: with
// four lanes for any x86-64 (SSE) and with eight inside an AVX2 function chosen at run time. Neither build
// fuses multiply-adds and both sum in the same order, so they agree bit for bit.
using Vec4 = float __attribute__((vector_size(16)));
using Vec8 = float __attribute__((vector_size(32)));

template <class Vec>
constexpr int kLanes = sizeof(Vec) / sizeof(float);
// The kernels keep eight vector accumulators in flight: enough to hide the latency of a vector add, few
// enough for SSE's sixteen registers. dot() does so with kLanes query vectors of 8 / kLanes accumulators
// each.
constexpr int kAccumulators = 8;

// out[x] = q[x] . k for Q query vectors; each chunk of k is loaded once for all Q products. Eight partial
// sums (lane i % 8) reduced in one fixed order make a product independent of Q and of the vector width.
template <int Q, class Vec>
[[gnu::always_inline]] inline void dot(const float* const* q, const float* k, int64_t n, float* out) {
  constexpr int kParts = 8 / kLanes<Vec>;
  Vec acc[Q][kParts] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int part = 0; part < kParts; ++part) {
      Vec key;
      std::memcpy(&key, k + i + part * kLanes<Vec>, sizeof key);
      for (int x = 0; x < Q; ++x) {
        Vec query;
        std::memcpy(&query, q[x] + i + part * kLanes<Vec>, sizeof query);
        acc[x][part] += query * key;
      }
    }
  }
  for (int x = 0; x < Q; ++x) {
    float lane[8];
    std::memcpy(lane, acc[x], sizeof lane);
    float sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    for (int64_t t = i; t < n; ++t) sum += q[x][t] * k[t];
    out[x] = sum;
  }
}

// acc[0, Parts * lanes) += p[j] * value_j[0, Parts * lanes) over the visible keys j, value_j starting at
// values + j * stride. The slice of acc stays in registers across all keys.
template <int Parts, class Vec>
[[gnu::always_inline]] inline void accumulate_slice(float* acc, const float* p, const bool* visible,
                                                    const float* values, int64_t stride, int64_t keys) {
  constexpr int kStep = kLanes<Vec>;
  Vec sum[Parts];
  for (int part = 0; part < Parts; ++part) std::memcpy(&sum[part], acc + part * kStep, sizeof(Vec));
  for (int64_t j = 0; j < keys; ++j) {
    if (!visible[j]) continue;
    const float* value = values + j * stride;
    for (int part = 0; part < Parts; ++part) {
      Vec chunk;
      std::memcpy(&chunk, value + part * kStep, sizeof chunk);
      sum[part] += p[j] * chunk;
    }
  }
  for (int part = 0; part < Parts; ++part) std::memcpy(acc + part * kStep, &sum[part], sizeof(Vec));
}

// acc[0, n) += p[j] * value_j[0, n) over the visible keys j, in slices as wide as the registers allow.
template <class Vec>
[[gnu::always_inline]] inline void accumulate(float* acc, const float* p, const bool* visible,
                                              const float* values, int64_t stride, int64_t keys, int64_t n) {
  constexpr int kWidth = kLanes<Vec>;
  int64_t c = 0;
  for (; c + kAccumulators * kWidth <= n; c += kAccumulators * kWidth) {
    accumulate_slice<kAccumulators, Vec>(acc + c, p, visible, values + c, stride, keys);
  }
  if (c + 4 * kWidth <= n) {
    accumulate_slice<4, Vec>(acc + c, p, visible, values + c, stride, keys);
    c += 4 * kWidth;
  }
  if (c + 2 * kWidth <= n) {
    accumulate_slice<2, Vec>(acc + c, p, visible, values + c, stride, keys);
    c += 2 * kWidth;
  }
  if (c + kWidth <= n) {
    accumulate_slice<1, Vec>(acc + c, p, visible, values + c, stride, keys);
    c += kWidth;
  }
  for (; c < n; ++c) accumulate_slice<1, float>(acc + c, p, visible, values + c, stride, keys);
}

void scale_row(float* y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

// max() that lets a NaN through, so it reaches the output as torch's softmax would.
float max_keep_nan(float a, float b) {
  return (b > a || std::isnan(b)) ? b : a;
}

struct Operands {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  const int32_t* query_positions;
  const int32_t* key_positions;
  int64_t query_heads;
  int64_t kv_heads;
  int64_t head_dim;
  int64_t value_dim;
  float scale;
  float softcap;
  Visibility visibility;
};

struct Task {
  int64_t query_begin, query_end;  // rows of one sequence
  int64_t key_begin, key_end;      // that sequence's keys
  int64_t kv_head;
  int64_t head_begin, head_end;  // query heads, all mapped to kv_head
};

// Query vector i of a task is (row i / heads, head i % heads).
template <class Vec>
[[gnu::always_inline]] inline void run_task(const Operands& op, const Task& task) {
  const int64_t rows = task.query_end - task.query_begin;
  const int64_t heads = task.head_end - task.head_begin;
  const int64_t vectors = rows * heads;
  const float* query[kMaxVectors];
  float* acc[kMaxVectors];  // the output rows, unnormalized until the end
  float running_max[kMaxVectors];
  float running_sum[kMaxVectors];
  bool saw_key[kMaxVectors];
  float score[kMaxVectors][kKeyTile];   // raw products, then scores, then probabilities
  bool visible[kMaxVectors][kKeyTile];  // by query row
  bool row_sees_tile[kMaxVectors];

  for (int64_t i = 0; i < vectors; ++i) {
    int64_t token = task.query_begin + i / heads;
    int64_t head = task.head_begin + i % heads;
    query[i] = op.q + (token * op.query_heads + head) * op.head_dim;
    acc[i] = op.out + (token * op.query_heads + head) * op.value_dim;
    std::fill(acc[i], acc[i] + op.value_dim, 0.0f);
    running_max[i] = kNegInf;
    running_sum[i] = 0.0f;
    saw_key[i] = false;
  }

  for (int64_t key0 = task.key_begin; key0 < task.key_end; key0 += kKeyTile) {
    const int64_t keys = std::min(kKeyTile, task.key_end - key0);
    bool tile_visible = false;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t query_pos = op.query_positions[task.query_begin + r];
      bool any = false;
      for (int64_t j = 0; j < keys; ++j) {
        visible[r][j] = op.visibility.sees(query_pos, op.key_positions[key0 + j]);
        any |= visible[r][j];
      }
      row_sees_tile[r] = any;
      tile_visible |= any;
    }
    if (!tile_visible) continue;

    // Raw scores for every vector, visible or not: grouping vectors pays for the few unused products.
    for (int64_t j = 0; j < keys; ++j) {
      const float* key = op.k + ((key0 + j) * op.kv_heads + task.kv_head) * op.head_dim;
      constexpr int kGroup = kLanes<Vec>;
      float products[kGroup];
      int64_t i = 0;
      for (; i + kGroup <= vectors; i += kGroup) {
        dot<kGroup, Vec>(query + i, key, op.head_dim, products);
        for (int x = 0; x < kGroup; ++x) score[i + x][j] = products[x];
      }
      for (; i < vectors; ++i) dot<1, Vec>(query + i, key, op.head_dim, &score[i][j]);
    }

    for (int64_t i = 0; i < vectors; ++i) {
      const int64_t r = i / heads;
      if (!row_sees_tile[r]) continue;
      saw_key[i] = true;
      float tile_max = kNegInf;
      for (int64_t j = 0; j < keys; ++j) {
        if (!visible[r][j]) continue;
        float s = score[i][j] * op.scale;
        if (op.softcap > 0.0f) s = op.softcap * std::tanh(s / op.softcap);
        score[i][j] = s;
        tile_max = max_keep_nan(tile_max, s);
      }
      if (tile_max == kNegInf) {
        // Every visible score is -inf: no weight here, and no maximum to shift by yet.
        std::fill(score[i], score[i] + keys, 0.0f);
        continue;
      }
      const float new_max = max_keep_nan(running_max[i], tile_max);
      if (!(new_max == running_max[i])) {
        const float correction = std::exp(running_max[i] - new_max);
        running_sum[i] *= correction;
        scale_row(acc[i], correction, op.value_dim);
        running_max[i] = new_max;
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < keys; ++j) {
        const float p = visible[r][j] ? std::exp(score[i][j] - new_max) : 0.0f;
        score[i][j] = p;
        sum += p;
      }
      running_sum[i] += sum;
    }

    const float* values = op.v + (key0 * op.kv_heads + task.kv_head) * op.value_dim;
    for (int64_t i = 0; i < vectors; ++i) {
      const int64_t r = i / heads;
      if (row_sees_tile[r]) {
        accumulate<Vec>(acc[i], score[i], visible[r], values, op.kv_heads * op.value_dim, keys, op.value_dim);
      }
    }
  }

  for (int64_t i = 0; i < vectors; ++i) {
    if (!saw_key[i]) continue;  // no visible key: the row stays zero
    if (running_sum[i] == 0.0f) {
      std::fill(acc[i], acc[i] + op.value_dim, std::numeric_limits<float>::quiet_NaN());
    } else {
      scale_row(acc[i], 1.0f / running_sum[i], op.value_dim);
    }
  }
}

void run_task_sse(const Operands& op, const Task& task) {
  run_task<Vec4>(op, task);
}

using TaskRunner = void (*)(const Operands&, const Task&);

#if defined(__x86_64__)
[[gnu::target("avx2")]] void run_task_avx2(const Operands& op, const Task& task) {
  run_task<Vec8>(op, task);
}

TaskRunner pick_runner() {
  return __builtin_cpu_supports("avx2") ? run_task_avx2 : run_task_sse;
}
#else
TaskRunner pick_runner() {
  return run_task_sse;
}
#endif

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionBatch& batch,
                           const AttentionParams& params, const Tensor& out) {
  Operands op{};
  op.q = q.data_as<float>();
  op.k = k.data_as<float>();
  op.v = v.data_as<float>();
  op.out = out.data_as<float>();
  op.query_positions = batch.query_positions.data_as<int32_t>();
  op.key_positions = batch.key_positions.data_as<int32_t>();
  op.query_heads = q.dim(1);
  op.kv_heads = k.dim(1);
  op.head_dim = q.dim(2);
  op.value_dim = v.dim(2);
  op.scale = params.scale != 0.0f ? params.scale : 1.0f / std::sqrt(static_cast<float>(op.head_dim));
  op.softcap = params.softcap;
  op.visibility = params.visibility;

  const int64_t group = op.query_heads / op.kv_heads;
  const int64_t heads_per_task = std::min(group, kMaxVectors);
  const int64_t rows_per_task = std::max<int64_t>(1, kMaxVectors / heads_per_task);
  const int32_t* query_offsets = batch.query_offsets.data_as<int32_t>();
  const int32_t* key_offsets = batch.key_offsets.data_as<int32_t>();
  const int64_t sequences = batch.query_offsets.dim(0) - 1;

  std::vector<Task> tasks;
  for (int64_t b = 0; b < sequences; ++b) {
    for (int64_t row = query_offsets[b]; row < query_offsets[b + 1]; row += rows_per_task) {
      for (int64_t kv_head = 0; kv_head < op.kv_heads; ++kv_head) {
        for (int64_t head = kv_head * group; head < (kv_head + 1) * group; head += heads_per_task) {
          tasks.push_back({row, std::min<int64_t>(row + rows_per_task, query_offsets[b + 1]), key_offsets[b],
                           key_offsets[b + 1], kv_head, head,
                           std::min(head + heads_per_task, (kv_head + 1) * group)});
        }
      }
    }
  }
  static const TaskRunner run = pick_runner();
  pool().parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) run(op, tasks[t]);
  });
}

}  // namespace dlm
