#pragma once
// The backbone contract: a backbone turns the token ids of a ragged batch into logits (or fused statistics of
// them) for the rows the caller asks for, and never decides anything. The sampler chooses the visibility
// rule, the rows, and what each sequence does with its cache.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backbones/sequence_cache.h"
#include "engine/backend/backend.h"
#include "engine/core/tensor.h"
#include "engine/ops/op_types.h"

namespace dlm {

// What one sequence of a call does with its cache. Keys are addressed by position; the cache holds positions
// [0, length).
//   None:    no cache; the sequence's rows attend to each other only.
//   Read:    rows attend to the cached positions and to each other; nothing is written. Every row's position
//            must be >= the cache's length (a cached position would appear twice).
//   Commit:  the rows' keys and values are written at their positions first, then the rows attend to the
//            whole cache. The written positions together with [0, length) must form [0, new length): a commit
//            appends (AR decoding, a finished block) and may also rewrite cached positions.
//   Replace: like Commit, but every position must already be cached: entries are overwritten in place and
//            the length does not change (Fast-dLLM's dual cache).
enum class CachePolicy : uint8_t { None, Read, Commit, Replace };

struct CacheUse {
  SequenceCache* cache = nullptr;  // from Backbone::new_cache of the same backbone; null with None
  CachePolicy policy = CachePolicy::None;
};

enum class ForwardOutputs : uint8_t {
  Logits,          // f32 [N, vocab]
  Stats,           // VocabStats of softmax(logits): argmax, max prob, entropy, margin
  LogitsAndStats,  // both
};

// A debug hook: named intermediate tensors, per layer (-1 for tensors outside the layers: "embeddings",
// "logits"). Each tensor is on the backend's device and valid only during the call.
using TensorObserver = std::function<void(std::string_view name, int64_t layer, const Tensor& value)>;

// The dtype a backbone computes its activations in: the residual stream, attention and its cache. Logits are
// f32 either way.
enum class ActivationPrecision : uint8_t {
  Auto,  // bf16 where the backend supports bf16 activations and the checkpoint's matrices are bf16; else f32
  F32,   // f32 on any backend: the CPU's numbers (16-bit weights widened exactly), for tests and references
};

// One forward call, host side. Sequence b owns rows [offsets[b], offsets[b+1]) of token_ids and positions
// (no padding). positions[i] is the position of row i inside its sequence. logit_rows lists the rows whose
// logits are wanted, in the order the output rows come back.
struct ForwardBatch {
  std::vector<int32_t> offsets{0};  // [B+1], starts at 0, non-decreasing
  std::vector<int32_t> token_ids;   // [T]
  std::vector<int32_t> positions;   // [T]
  std::vector<int32_t> logit_rows;  // [N], each in [0, T)
  Visibility visibility;
  std::vector<CacheUse> caches;  // empty (no sequence uses a cache) or [B]
  ForwardOutputs outputs = ForwardOutputs::Logits;
  TensorObserver observer;  // empty: no dumps

  int64_t sequences() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t tokens() const { return static_cast<int64_t>(token_ids.size()); }
  void clear();  // keeps the capacity, so a decoding loop refills without allocating
  // Appends one sequence whose rows hold positions first_position, first_position + 1, ...
  void add_sequence(const std::vector<int32_t>& ids, int32_t first_position = 0);
  // Appends one sequence of rows at the given positions.
  void add_sequence(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions);
};

// The outputs the batch asked for; the others are empty. Valid until the backbone's next call.
struct ForwardResult {
  Tensor logits;     // f32 [N, vocab] on the backend's device
  VocabStats stats;  // [N] each
};

// Throws InputError for a token id outside [0, vocab_size) or a position outside [0, max_positions), and
// Error for a malformed batch (offsets, lengths, logit rows, visibility parameters, cache uses and the
// positions each cache policy allows).
void validate_forward_batch(const ForwardBatch& batch, int64_t vocab_size, int64_t max_positions);

struct DTypeBytes {
  int64_t tensors = 0;
  int64_t bytes = 0;
};

// For people: `dlm info` and logs.
struct BackboneSummary {
  std::string architecture;  // one line: kind, sizes, attention, MLP, positions
  int64_t parameters = 0;
  int64_t cache_bytes_per_position = 0;                 // what one cached position of one request costs
  std::vector<std::string> unused_tensors;              // checkpoint tensors the model does not use
  std::map<std::string, DTypeBytes> checkpoint_dtypes;  // every checkpoint tensor, by dtype name
};

class Backbone {
 public:
  virtual ~Backbone() = default;

  virtual int64_t vocab_size() const = 0;     // logits per row
  virtual int64_t max_positions() const = 0;  // the context length from the model's config
  // A cache for one request, able to hold positions [0, capacity); empty until a Commit.
  virtual std::unique_ptr<SequenceCache> new_cache(int64_t capacity) = 0;
  virtual ForwardResult forward(const ForwardBatch& batch) = 0;
  virtual BackboneSummary summary() const = 0;
};

}  // namespace dlm
