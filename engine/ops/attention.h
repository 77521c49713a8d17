#pragma once
// Op front-end: validates shapes, dtypes and devices (errors name the op and the tensors), then dispatches
// to the backend. See engine/backend/backend.h for the semantics.
#include <cstdint>
#include <optional>
#include <span>

#include "engine/backend/backend.h"

namespace dlm::ops {

void attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v,
               const AttentionBatch& batch, const AttentionParams& params, const Tensor& out);

// `visibility`, or bidirectional where it changes nothing: every query of every sequence sees all the keys
// of its sequence (a decoding step against its cache), which lets a backend take its bidirectional kernels.
// Sequence b's queries are at positions query_positions[query_offsets[b] .. query_offsets[b+1]), its keys
// at key_positions[key_offsets[b] .. key_offsets[b+1]).
Visibility simplified_visibility(const Visibility& visibility, std::span<const int32_t> query_offsets,
                                 std::span<const int32_t> query_positions,
                                 std::span<const int32_t> key_offsets,
                                 std::span<const int32_t> key_positions);

}  // namespace dlm::ops
