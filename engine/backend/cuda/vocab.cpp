// CudaBackend::argmax, top_k, vocab_stats and predict_tokens: dispatch to the kernels of vocab.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::argmax(const Tensor& logits, const Tensor& out) {
  const int64_t rows = logits.dim(0);
  if (rows == 0) return;
  context_->make_current();
  check_launch(cuda::launch_argmax(context_->stream, logits.data_as<float>(), rows, logits.dim(1),
                                   out.data_as<int32_t>()),
               "argmax");
}

void CudaBackend::top_k(const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) {
  const int64_t rows = logits.dim(0);
  if (rows == 0) return;
  Context& ctx = *context_;
  ctx.make_current();
  const size_t scratch_bytes = cuda::top_k_scratch_bytes(rows, k);
  void* scratch = scratch_bytes == 0 ? nullptr : ctx.reserve_scratch(scratch_bytes);
  check_launch(cuda::launch_top_k(ctx.stream, logits.data_as<float>(), rows, logits.dim(1), k,
                                  values.data_as<float>(), indices.data_as<int32_t>(), scratch),
               "top_k");
}

void CudaBackend::vocab_stats(const Tensor& logits, const VocabStats& out) {
  const int64_t rows = logits.dim(0);
  if (rows == 0) return;
  context_->make_current();
  check_launch(cuda::launch_vocab_stats(context_->stream, logits.data_as<float>(), rows, logits.dim(1),
                                        out.argmax.data_as<int32_t>(), out.max_prob.data_as<float>(),
                                        out.entropy.data_as<float>(), out.margin.data_as<float>()),
               "vocab_stats");
}

// The rules and penalized ids go up and the predictions come back through the shared scratch
// (stream-ordered after the ops before that used it); the copy back waits for the stream, as a copy of the
// logits would.
void CudaBackend::predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                                 std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) {
  const int64_t rows = logits.dim(0);
  if (rows == 0) return;
  Context& ctx = *context_;
  ctx.make_current();
  const int64_t vocab = logits.dim(1);
  // Several blocks a row add a row's terms in an order that follows the row count: never where results
  // must not depend on the batch.
  const int parts = ctx.batch_invariant ? 0 : cuda::argmax_parts(rules.data(), rows, vocab, ctx.sm_count);
  const auto aligned = [](size_t bytes) { return (bytes + 255) / 256 * 256; };
  const size_t rule_space = aligned(rules.size_bytes());
  const size_t id_space = aligned(penalized_ids.size_bytes());
  const size_t part_space = parts > 0 ? aligned(cuda::argmax_parts_scratch_bytes(rows, parts)) : 0;
  char* scratch =
      static_cast<char*>(ctx.reserve_scratch(rule_space + id_space + part_space + out.size_bytes()));
  auto* device_rules = reinterpret_cast<TokenRule*>(scratch);
  auto* device_ids = reinterpret_cast<int32_t*>(scratch + rule_space);
  void* part_scratch = scratch + rule_space + id_space;
  auto* device_out = reinterpret_cast<TokenPrediction*>(scratch + rule_space + id_space + part_space);
  DLM_CUDA_CHECK(
      cudaMemcpyAsync(device_rules, rules.data(), rules.size_bytes(), cudaMemcpyHostToDevice, ctx.stream));
  if (parts > 0) {
    check_launch(cuda::launch_predict_argmax_parts(ctx.stream, logits.data_as<float>(), rows, vocab,
                                                   device_rules, parts, part_scratch, device_out),
                 "predict_tokens (argmax parts)");
  } else {
    if (!penalized_ids.empty()) {
      DLM_CUDA_CHECK(cudaMemcpyAsync(device_ids, penalized_ids.data(), penalized_ids.size_bytes(),
                                     cudaMemcpyHostToDevice, ctx.stream));
    }
    check_launch(cuda::launch_predict_tokens(ctx.stream, logits.data_as<float>(), rows, vocab, device_rules,
                                             device_ids, device_out),
                 "predict_tokens");
  }
  DLM_CUDA_CHECK(
      cudaMemcpyAsync(out.data(), device_out, out.size_bytes(), cudaMemcpyDeviceToHost, ctx.stream));
  synchronize();
}

}  // namespace dlm
