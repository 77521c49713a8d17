#pragma once
// The Backend interface: memory, transfers and one virtual per op. Op front-ends in engine/ops validate
// shapes and dtypes, then dispatch here, so implementations may assume valid, contiguous arguments.
// Conventions: activations are f32, or bf16 on a backend whose supports_bf16_activations() says so (each op
// then computes in f32 and rounds its result once); logits and the vocabulary ops are f32; weights may be
// f32, bf16 or f16; outputs are written in full; an output may alias an input only where the op's front-end
// says so.
#include <memory>
#include <optional>
#include <span>

#include "engine/core/buffer.h"
#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "engine/ops/op_types.h"
#include "engine/ops/token_rule.h"

namespace dlm {

// A ragged batch for attention: sequence b owns query rows [query_offsets[b], query_offsets[b+1]) and
// key/value rows [key_offsets[b], key_offsets[b+1]). Positions (i32) drive visibility; a query with no
// visible key gets a zero output row.
struct AttentionBatch {
  Tensor query_offsets;    // i32 [B+1]
  Tensor key_offsets;      // i32 [B+1]
  Tensor query_positions;  // i32 [Tq]
  Tensor key_positions;    // i32 [Tk]
  // The offsets again, on the host, where the caller has them (empty: not given). They let a backend plan
  // from the sequence lengths without reading the device: the CUDA backend sizes cuDNN's attention from the
  // longest sequence and runs it only when they are given.
  std::span<const int32_t> host_query_offsets;
  std::span<const int32_t> host_key_offsets;
};

// Per-row statistics of softmax(logits) computed without materializing probabilities.
struct VocabStats {
  Tensor argmax;    // i32 [N]: the first index of the maximum
  Tensor max_prob;  // f32 [N]
  Tensor entropy;   // f32 [N], natural log
  Tensor margin;    // f32 [N]: top-1 minus top-2 probability
};

// Work a backend recorded, to queue again in one call (a CUDA graph); Backend::replay takes it.
class RecordedWork {
 public:
  virtual ~RecordedWork() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  // Whether the ops take bf16 activations (engine/ops/check.h check_activation); the CPU backend, the
  // reference, computes in f32 only.
  virtual bool supports_bf16_activations() const = 0;
  virtual Buffer allocate(size_t bytes) = 0;
  // Same dtype and shape; either side may be on the host or on this backend's device. dst is contiguous;
  // src is too, or a view whose slices along axis 0 are (Tensor::slices_contiguous: a column block of a
  // wider matrix).
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void synchronize() = 0;
  // Host memory the device copies from without staging it (pinned on CUDA), which a recording may copy from.
  virtual Buffer allocate_host(size_t bytes) { return Buffer::host(bytes); }

  // Recording (CUDA graphs). Between begin_recording() and end_recording() the ops and copies given are
  // recorded instead of run; end_recording() returns the recording, or nullptr when it failed (an op that
  // cannot be recorded threw, or the device refused): nothing ran then, and the caller queues the work as
  // usual. replay() queues a recording again with the memory it was made with: device operands and
  // allocate_host() sources, read at replay time. A backend that cannot record says so, and the others throw.
  virtual bool records_work() const { return false; }
  virtual void begin_recording() { fail("the {} backend cannot record work", device_name(device())); }
  virtual std::unique_ptr<RecordedWork> end_recording() {
    fail("the {} backend cannot record work", device_name(device()));
  }
  virtual void replay(const RecordedWork& work) {
    (void)work;
    fail("the {} backend cannot record work", device_name(device()));
  }
  // copy(sources[i], destinations[i]) for every i, as one batch where the backend can (a layer's K/V cache
  // writes and gathers). The copies are independent: none reads or writes another's destination.
  virtual void copy_batch(std::span<const Tensor> sources, std::span<const Tensor> destinations) {
    DLM_CHECK(sources.size() == destinations.size(), "copy_batch: {} sources for {} destinations",
              sources.size(), destinations.size());
    for (size_t i = 0; i < sources.size(); ++i) copy(sources[i], destinations[i]);
  }

  // Element conversion between float dtypes (f32, bf16, f16), same shape.
  virtual void cast(const Tensor& x, const Tensor& out) = 0;
  // out[M,N] = x[M,K] * weight[N,K]^T (+ bias[N]); weight in the Hugging Face [out, in] layout.
  virtual void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                      const Tensor& out) = 0;
  // out[N,D] = table[ids[N], :]; ids i32 or i64, checked against the table.
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                        const Tensor& out) = 0;
  virtual void layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, float eps,
                          const Tensor& out) = 0;
  // sum_out = x + residual, then norm_out = rms_norm(sum_out): a residual add and the norm after it in one
  // pass over the rows. Either output may be x or residual, never the other output. This composition is
  // the definition; a backend overrides it only to fuse it (the same numbers).
  virtual void add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                            NormWeight mode, const Tensor& sum_out, const Tensor& norm_out) {
    add(x, residual, sum_out);
    rms_norm(sum_out, weight, eps, mode, norm_out);
  }
  // x[T,H,D] rotated at positions[T] (i32) with inv_freq[rotary_dim/2] (f32); each token's [H,D] of x is
  // contiguous, tokens x.stride(0) apart; out is contiguous and may alias a contiguous x.
  virtual void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                    const RopeParams& params, const Tensor& out) = 0;
  // The heads of a fused q/k/v product's output qkv [T, (Hq + 2 Hkv) D] (each token's row contiguous, tokens
  // qkv.stride(0) apart): q [T,Hq,D] = rope of its first Hq heads, k [T,Hkv,D] = rope of the next Hkv, v
  // [T,Hkv,D] = the last Hkv; q, k and v contiguous. This composition (backend.cpp) is the definition; a
  // backend overrides it only to fuse it (the same numbers).
  virtual void rope_qkv(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                        const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v);
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& out) = 0;  // out may alias a or b
  virtual void silu(const Tensor& x, const Tensor& out) = 0;
  virtual void gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) = 0;
  // silu(gate) * up and gelu(gate) * up. gate and up may be rank-2 views with contiguous rows (column blocks
  // of one matrix: Tensor::row_stride); out is contiguous.
  virtual void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  virtual void geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
                     const Tensor& out) = 0;
  virtual void softmax(const Tensor& x, const Tensor& out) = 0;      // over the last axis
  virtual void log_softmax(const Tensor& x, const Tensor& out) = 0;  // over the last axis
  // q[Tq,Hq,D], k[Tk,Hkv,D], v[Tk,Hkv,Dv] -> out[Tq,Hq,Dv]; Hq a multiple of Hkv (GQA/MQA). Non-finite
  // scores follow softmax (NaN or +inf makes the row NaN); keys a query cannot see never contribute.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionBatch& batch,
                         const AttentionParams& params, const Tensor& out) = 0;
  // i32 [N]. NaN counts as the maximum, as in torch.argmax (here and in top_k, vocab_stats).
  virtual void argmax(const Tensor& logits, const Tensor& out) = 0;
  // The k largest per row, descending; ties go to the lower index.
  virtual void top_k(const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) = 0;
  virtual void vocab_stats(const Tensor& logits, const VocabStats& out) = 0;

  // Whether predict_tokens runs here. A device backend predicts next to its logits, so that a step brings
  // back a few bytes per row instead of the rows; the CPU's samplers read the logits they already hold.
  virtual bool predicts_tokens() const { return false; }
  // out[r] = rules[r] applied to logits[r] (engine/ops/token_rule.h); rules, penalized_ids (the id lists of
  // the rules' repetition penalties) and out are host memory, and out is complete when the call returns. A
  // row with a repetition penalty or a division by the temperature is scaled in place.
  virtual void predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                              std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) {
    (void)logits, (void)rules, (void)penalized_ids, (void)out;
    fail("predict_tokens: the {} backend has no token rules", device_name(device()));
  }
};

}  // namespace dlm
