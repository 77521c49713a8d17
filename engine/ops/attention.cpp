#include "engine/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>

#include "engine/ops/check.h"

namespace dlm::ops {
namespace {

constexpr std::string_view kOp = "attention";

void check_params(const AttentionParams& params) {
  const Visibility& visibility = params.visibility;
  switch (visibility.kind) {
    case VisibilityKind::Bidirectional:
    case VisibilityKind::Causal:
      break;
    case VisibilityKind::BlockCausal:
      DLM_CHECK(visibility.block_size > 0, "{}: block-causal visibility needs block_size > 0, got {}", kOp,
                visibility.block_size);
      break;
    case VisibilityKind::SlidingWindow:
      DLM_CHECK(visibility.window > 0, "{}: sliding-window visibility needs window > 0, got {}", kOp,
                visibility.window);
      break;
    default:
      fail("{}: unknown visibility kind {}", kOp, static_cast<int>(visibility.kind));
  }
  DLM_CHECK(std::isfinite(params.scale) && params.scale >= 0.0f,
            "{}: scale must be finite and >= 0 (0: 1/sqrt(head_dim)), got {}", kOp, params.scale);
  DLM_CHECK(std::isfinite(params.softcap) && params.softcap >= 0.0f,
            "{}: softcap must be finite and >= 0 (0: off), got {}", kOp, params.softcap);
}

// Offsets never decrease and stay within [0, rows]; query offsets also run from 0 to rows exactly, so every
// output row belongs to a sequence and is written.
void check_offsets(std::string_view arg, std::span<const int32_t> o, int64_t rows, bool cover_all) {
  const int64_t count = static_cast<int64_t>(o.size());
  if (cover_all) {
    DLM_CHECK(o[0] == 0, "{}: {}[0] must be 0, got {}", kOp, arg, o[0]);
    DLM_CHECK(o[count - 1] == rows, "{}: {}[{}] must equal the {} rows, got {}", kOp, arg, count - 1, rows,
              o[count - 1]);
  } else {
    DLM_CHECK(o[0] >= 0, "{}: {}[0] must be >= 0, got {}", kOp, arg, o[0]);
    DLM_CHECK(o[count - 1] <= rows, "{}: {}[{}] must be <= the {} rows, got {}", kOp, arg, count - 1, rows,
              o[count - 1]);
  }
  for (int64_t b = 0; b + 1 < count; ++b) {
    DLM_CHECK(o[b] <= o[b + 1], "{}: {} must not decrease, got {}[{}] = {} > {}[{}] = {}", kOp, arg, arg, b,
              o[b], arg, b + 1, o[b + 1]);
  }
}

std::span<const int32_t> host_span(const Tensor& offsets) {
  return {offsets.data_as<int32_t>(), static_cast<size_t>(offsets.dim(0))};
}

// The host copies of the offsets, when given, are valid offsets of B+1 entries, and equal the batch's own
// where those are on the host too.
void check_host_offsets(const AttentionBatch& batch, int64_t query_rows, int64_t key_rows,
                        bool batch_on_host) {
  const bool has_query = !batch.host_query_offsets.empty();
  const bool has_key = !batch.host_key_offsets.empty();
  if (!has_query && !has_key) return;
  DLM_CHECK(has_query && has_key,
            "{}: host_query_offsets and host_key_offsets come together, got {} and {} entries", kOp,
            batch.host_query_offsets.size(), batch.host_key_offsets.size());
  const int64_t count = batch.query_offsets.dim(0);
  for (const auto& [arg, host] : {std::pair{"host_query_offsets", batch.host_query_offsets},
                                  std::pair{"host_key_offsets", batch.host_key_offsets}}) {
    DLM_CHECK(static_cast<int64_t>(host.size()) == count, "{}: {} must hold the batch's {} offsets, got {}",
              kOp, arg, count, host.size());
  }
  check_offsets("host_query_offsets", batch.host_query_offsets, query_rows, true);
  check_offsets("host_key_offsets", batch.host_key_offsets, key_rows, false);
  if (!batch_on_host) return;
  DLM_CHECK(std::ranges::equal(batch.host_query_offsets, host_span(batch.query_offsets)) &&
                std::ranges::equal(batch.host_key_offsets, host_span(batch.key_offsets)),
            "{}: host_query_offsets and host_key_offsets must equal query_offsets and key_offsets", kOp);
}

void check_positions(std::string_view arg, const Tensor& positions) {
  const int32_t* p = positions.data_as<int32_t>();
  for (int64_t i = 0; i < positions.dim(0); ++i) {
    DLM_CHECK(p[i] >= 0, "{}: {}[{}] must be >= 0, got {}", kOp, arg, i, p[i]);
  }
}

// The checks that read the batch's contents; possible only where the batch lives on the host.
void check_batch_contents(const AttentionBatch& batch, int64_t query_rows, int64_t key_rows) {
  check_offsets("query_offsets", host_span(batch.query_offsets), query_rows, true);
  check_offsets("key_offsets", host_span(batch.key_offsets), key_rows, false);
  check_positions("query_positions", batch.query_positions);
  check_positions("key_positions", batch.key_positions);
}

bool on_host(const AttentionBatch& batch) {
  for (const Tensor* t :
       {&batch.query_offsets, &batch.key_offsets, &batch.query_positions, &batch.key_positions}) {
    if (t->device().kind != DeviceKind::Cpu) return false;
  }
  return true;
}

}  // namespace

// q, k and v activations of one dtype (f32, or bf16 where the backend computes in it); out an activation.
void attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v,
               const AttentionBatch& batch, const AttentionParams& params, const Tensor& out) {
  check_activation(kOp, "q", q, backend);
  check_activation(kOp, "k", k, backend);
  check_activation(kOp, "v", v, backend);
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "k", k, "q", q);
  check_same_dtype(kOp, "v", v, "q", q);
  check_rank(kOp, "q", q, 3);
  check_rank(kOp, "k", k, 3);
  check_rank(kOp, "v", v, 3);
  const int64_t query_rows = q.dim(0);
  const int64_t query_heads = q.dim(1);
  const int64_t head_dim = q.dim(2);
  const int64_t key_rows = k.dim(0);
  const int64_t kv_heads = k.dim(1);
  DLM_CHECK(head_dim > 0, "{}: q ({}) must have head_dim > 0", kOp, q.describe());
  DLM_CHECK(query_heads > 0 && kv_heads > 0 && query_heads % kv_heads == 0,
            "{}: q's {} heads must be a positive multiple of k's {} kv heads (q {}, k {})", kOp, query_heads,
            kv_heads, q.describe(), k.describe());
  DLM_CHECK(k.dim(2) == head_dim, "{}: k's head_dim must equal q's {}, got {}", kOp, head_dim, k.describe());
  DLM_CHECK(v.dim(0) == key_rows && v.dim(1) == kv_heads, "{}: v must have shape [{},{},Dv] like k, got {}",
            kOp, key_rows, kv_heads, v.describe());
  check_shape(kOp, "out", out, Shape{query_rows, query_heads, v.dim(2)});
  DLM_CHECK(
      query_rows <= std::numeric_limits<int32_t>::max() && key_rows <= std::numeric_limits<int32_t>::max(),
      "{}: {} query rows and {} key rows exceed the i32 offsets", kOp, query_rows, key_rows);
  check_disjoint(kOp, "out", out, "q", q);
  check_disjoint(kOp, "out", out, "k", k);
  check_disjoint(kOp, "out", out, "v", v);

  check_operand(kOp, "query_offsets", batch.query_offsets, backend, {DType::I32});
  check_operand(kOp, "key_offsets", batch.key_offsets, backend, {DType::I32});
  check_operand(kOp, "query_positions", batch.query_positions, backend, {DType::I32});
  check_operand(kOp, "key_positions", batch.key_positions, backend, {DType::I32});
  check_rank(kOp, "query_offsets", batch.query_offsets, 1);
  DLM_CHECK(batch.query_offsets.dim(0) >= 1, "{}: query_offsets must hold B+1 >= 1 entries, got {}", kOp,
            batch.query_offsets.describe());
  check_shape(kOp, "key_offsets", batch.key_offsets, batch.query_offsets.shape());
  check_shape(kOp, "query_positions", batch.query_positions, Shape{query_rows});
  check_shape(kOp, "key_positions", batch.key_positions, Shape{key_rows});
  check_params(params);
  const bool batch_on_host = on_host(batch);
  if (batch_on_host) check_batch_contents(batch, query_rows, key_rows);
  check_host_offsets(batch, query_rows, key_rows, batch_on_host);

  backend.attention(q, k, v, batch, params, out);
}

Visibility simplified_visibility(const Visibility& visibility, std::span<const int32_t> query_offsets,
                                 std::span<const int32_t> query_positions,
                                 std::span<const int32_t> key_offsets,
                                 std::span<const int32_t> key_positions) {
  if (visibility.kind == VisibilityKind::Bidirectional) return visibility;
  DLM_CHECK(!query_offsets.empty() && query_offsets.size() == key_offsets.size(),
            "{}: {} query offsets and {} key offsets: one of each per sequence, plus one", kOp,
            query_offsets.size(), key_offsets.size());
  check_offsets("query_offsets", query_offsets, static_cast<int64_t>(query_positions.size()), false);
  check_offsets("key_offsets", key_offsets, static_cast<int64_t>(key_positions.size()), false);
  for (size_t b = 0; b + 1 < query_offsets.size(); ++b) {
    const auto queries = query_positions.subspan(query_offsets[b], query_offsets[b + 1] - query_offsets[b]);
    const auto keys = key_positions.subspan(key_offsets[b], key_offsets[b + 1] - key_offsets[b]);
    if (queries.empty() || keys.empty()) continue;
    // Each rule bounds how far after a query (causal, block-causal) and how far before it (a window) a key
    // may lie: the earliest query with the latest key and the latest query with the earliest key are the
    // pairs furthest apart each way.
    const auto [first_query, last_query] = std::ranges::minmax(queries);
    const auto [first_key, last_key] = std::ranges::minmax(keys);
    if (!visibility.sees(first_query, last_key) || !visibility.sees(last_query, first_key)) return visibility;
  }
  return Visibility::bidirectional();
}

}  // namespace dlm::ops
