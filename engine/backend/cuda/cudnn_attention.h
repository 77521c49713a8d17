#pragma once
// Attention through cuDNN's fused flash attention, built with the cuDNN graph (backend) API: the graph cuDNN
// recognizes as scaled dot-product attention (S = Q K^T, S *= scale, a padding mask from the sequence
// lengths, softmax as max / sub / exp / sum / div with its statistics, O = P V with P in bf16), over rows
// packed as ours are
// ("THD": ragged offsets per sequence). It covers bidirectional visibility with bf16 q, k, v and out;
// CudaBackend::attention (attention.cpp) sends everything else to dlm's own kernels.
//
// A plan is made once per SdpaShape and cached; the shape's longest-sequence sizes are rounded up
// (plan_shape) so that lengths that move a little reuse one plan, which the ragged offsets and the padding
// mask make exact.
#include <cudnn.h>

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/backend/cuda/attention_kernels.h"

namespace dlm::cuda {

// What one plan serves: the number of sequences, the longest sequence's query and key rows, heads and head
// sizes.
struct SdpaShape {
  int64_t sequences = 0;
  int64_t max_queries = 0;
  int64_t max_keys = 0;
  int64_t query_heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t value_dim = 0;

  auto operator<=>(const SdpaShape&) const = default;
};

// Owns one cudnnBackendDescriptor_t (destroyed with it).
class CudnnDescriptor {
 public:
  // Creates a descriptor of `type`; Error naming the type when cuDNN refuses.
  explicit CudnnDescriptor(cudnnBackendDescriptorType_t type);
  CudnnDescriptor(CudnnDescriptor&& other) noexcept;
  CudnnDescriptor& operator=(CudnnDescriptor&&) = delete;
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  ~CudnnDescriptor();

  cudnnBackendDescriptor_t get() const { return descriptor_; }

 private:
  cudnnBackendDescriptor_t descriptor_ = nullptr;
};

// The tensors and operations of the attention graph for `shape`, each finalized. Needs no device, so the
// graph's construction is testable anywhere; Error naming the descriptor and cuDNN's message on a refusal.
struct SdpaOperations {
  std::vector<CudnnDescriptor> parts;  // the tensors, and the descriptors the operations refer to
  std::vector<CudnnDescriptor> operations;
};
SdpaOperations build_sdpa_operations(const SdpaShape& shape);

// The shape a plan is made for: the longest sequence's rows rounded up to a power of two, at least 64.
SdpaShape plan_shape(const AttentionProblem& problem, std::span<const int32_t> host_query_offsets,
                     std::span<const int32_t> host_key_offsets);

// Why cuDNN cannot take `problem` ("" when it can): the dtypes, visibility, softcap, head sizes, a cuDNN
// version with known bugs, alignment, sizes past i32 element offsets, a sequence with queries but no keys, or
// no host offsets. `sm_major` is the device's compute capability (packed rows need Hopper before cuDNN
// 9.18.1).
std::string sdpa_unsupported(const AttentionProblem& problem, std::span<const int32_t> host_query_offsets,
                             std::span<const int32_t> host_key_offsets, int sm_major);

// The cuDNN handle on one device and stream, and the plans made so far.
class CudnnAttention {
 public:
  // Error when cuDNN cannot be initialized on the current device.
  explicit CudnnAttention(cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // The workspace a run of `shape` needs beyond its length arrays, making the plan on first use; sets
  // `why_not` (and returns 0) when cuDNN offers no engine for the shape.
  size_t workspace_bytes(const SdpaShape& shape, std::string& why_not);
  // Queues `problem` (sdpa_unsupported said "") on the stream with `shape`'s plan (workspace_bytes made it).
  // `scratch` holds at least length_array_bytes(shape) + workspace_bytes(shape) device bytes, and nothing
  // queued before reads it afterwards. The host offsets are the device offsets' values.
  void run(const AttentionProblem& problem, const SdpaShape& shape,
           std::span<const int32_t> host_query_offsets, std::span<const int32_t> host_key_offsets,
           void* scratch);
  // Forgets the length arrays kept for the next run: the stream's work from here on is recorded or replayed,
  // so what the host last queued is not what the device last did.
  void forget_lengths() { kept_lengths_.valid = false; }

  // The bytes of the device arrays a run derives from the offsets (lengths and ragged offsets), 256-aligned.
  static size_t length_array_bytes(const SdpaShape& shape);

 private:
  struct Plan;
  // The length arrays of the last run, in a buffer of their own: the layers of a forward share their
  // offsets, so every run after the first takes them as they are.
  struct KeptLengths {
    bool valid = false;
    const int32_t* query_offsets = nullptr;
    const int32_t* key_offsets = nullptr;
    int64_t rows[4] = {};  // elements per q, k, v and out row
    std::vector<int32_t> host_query_offsets, host_key_offsets;
  };
  // Fills the kept arrays for `problem` unless they hold its lengths already; false where its sequences
  // are more than the kept arrays take.
  bool keep_lengths(const AttentionProblem& problem, std::span<const int32_t> host_query_offsets,
                    std::span<const int32_t> host_key_offsets);

  cudnnHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::map<SdpaShape, std::unique_ptr<Plan>> plans_;
  void* kept_arrays_ = nullptr;  // device memory for kMaxKeptSequences sequences
  KeptLengths kept_lengths_;
};

}  // namespace dlm::cuda
