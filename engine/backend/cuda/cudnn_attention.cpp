// cuDNN's fused attention through the graph (backend) API; cudnn_attention.h describes the graph.
#include "engine/backend/cuda/cudnn_attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <limits>
#include <string_view>
#include <utility>

#include "engine/core/error.h"

namespace dlm::cuda {
namespace {

// The graph's tensor ids: the variant pack names the non-virtual ones, the virtual ones follow.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kOut,
  kQueryRows,
  kKeyRows,
  kScale,
  kMaskedScore,
  kQOffsets,
  kKOffsets,
  kVOffsets,
  kOutOffsets,
  kFirstVirtual = 100,
};

constexpr int64_t kByteAlignment = 16;       // what every tensor of the graph promises cuDNN
constexpr size_t kArrayAlignment = 16;       // bytes between the length arrays' starts (kByteAlignment)
constexpr int64_t kMaxKeptSequences = 1024;  // batches the kept length arrays take (CudnnAttention)

// Error "cuDNN: <what> failed: <status>: <cuDNN's own message>".
void check_cudnn(cudnnStatus_t status, std::string_view what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char message[1024] = {};
  cudnnGetLastErrorString(message, sizeof message);
  fail("cuDNN: {} failed: {}{}{}", what, cudnnGetErrorString(status), message[0] != '\0' ? ": " : "",
       message);
}

void set(const CudnnDescriptor& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
         int64_t count, const void* values, std::string_view what) {
  check_cudnn(cudnnBackendSetAttribute(d.get(), name, type, count, values),
              fmt::format("setting attribute {} of {}", static_cast<int>(name), what));
}

void set_descriptor(const CudnnDescriptor& d, cudnnBackendAttributeName_t name,
                    cudnnBackendDescriptor_t value, std::string_view what) {
  set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value, what);
}

void finalize(const CudnnDescriptor& d, std::string_view what) {
  check_cudnn(cudnnBackendFinalize(d.get()), fmt::format("finalizing {}", what));
}

using Dims = std::array<int64_t, 4>;

struct TensorSpec {
  const char* name;
  int64_t uid;
  cudnnDataType_t type;
  Dims dims;
  Dims strides;
  bool is_virtual = false;
  bool by_value = false;
  cudnnBackendDescriptor_t ragged_offsets = nullptr;
};

// Builds the graph's descriptors into an SdpaOperations; each add_* returns the raw descriptor it made.
class GraphBuilder {
 public:
  explicit GraphBuilder(SdpaOperations& graph) : graph_(graph) {}

  cudnnBackendDescriptor_t tensor(const TensorSpec& spec) {
    CudnnDescriptor d(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const std::string what = fmt::format("tensor {}", spec.name);
    set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &spec.type, what);
    set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, spec.dims.data(), what);
    set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, spec.strides.data(), what);
    set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &spec.uid, what);
    set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &kByteAlignment, what);
    const bool yes = true;
    if (spec.is_virtual) set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes, what);
    if (spec.by_value) set(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes, what);
    if (spec.ragged_offsets != nullptr) {
      set_descriptor(d, CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, spec.ragged_offsets, what);
    }
    finalize(d, what);
    return keep(graph_.parts, std::move(d));
  }

  // A virtual tensor (one of the graph's intermediates) with the next free id.
  cudnnBackendDescriptor_t intermediate(const char* name, cudnnDataType_t type, const Dims& dims,
                                        const Dims& strides) {
    return tensor({name, next_virtual_++, type, dims, strides, true});
  }

  // y = mode(x[, b[, t]]) computed in `math`; `axis` for GEN_INDEX only.
  void pointwise(const char* name, cudnnPointwiseMode_t mode, cudnnDataType_t math,
                 cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t,
                 cudnnBackendDescriptor_t y, int64_t axis = -1) {
    CudnnDescriptor pw(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const std::string what = fmt::format("pointwise {}", name);
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, what);
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math, what);
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
      set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, what);
    finalize(pw, what);
    const cudnnBackendDescriptor_t pw_raw = keep(graph_.parts, std::move(pw));

    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    const std::string op_what = fmt::format("operation {}", name);
    set_descriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw_raw, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, op_what);
    if (b != nullptr) set_descriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, op_what);
    if (t != nullptr) set_descriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, op_what);
    const float one = 1.0f;
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, op_what);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, op_what);
    finalize(op, op_what);
    keep(graph_.operations, std::move(op));
  }

  // c = a b in f32, with the rows (m), columns (n) or depth (k) of each batch entry overridden by the
  // per-sequence counts where given.
  void matmul(const char* name, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
              cudnnBackendDescriptor_t c, cudnnBackendDescriptor_t m_override,
              cudnnBackendDescriptor_t n_override, cudnnBackendDescriptor_t k_override) {
    CudnnDescriptor mm(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const std::string what = fmt::format("matmul {}", name);
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, what);
    finalize(mm, what);
    const cudnnBackendDescriptor_t mm_raw = keep(graph_.parts, std::move(mm));

    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    const std::string op_what = fmt::format("operation {}", name);
    set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm_raw, op_what);
    if (m_override != nullptr)
      set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, m_override, op_what);
    if (n_override != nullptr)
      set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, n_override, op_what);
    if (k_override != nullptr)
      set_descriptor(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, k_override, op_what);
    finalize(op, op_what);
    keep(graph_.operations, std::move(op));
  }

  // y = the `reduce` of x over its last axis, in f32.
  void reduction(const char* name, cudnnReduceTensorOp_t reduce, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t y) {
    CudnnDescriptor rd(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const std::string what = fmt::format("reduction {}", name);
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    set(rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, what);
    set(rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce, what);
    finalize(rd, what);
    const cudnnBackendDescriptor_t rd_raw = keep(graph_.parts, std::move(rd));

    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    const std::string op_what = fmt::format("operation {}", name);
    set_descriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, rd_raw, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, op_what);
    set_descriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, op_what);
    finalize(op, op_what);
    keep(graph_.operations, std::move(op));
  }

 private:
  static cudnnBackendDescriptor_t keep(std::vector<CudnnDescriptor>& into, CudnnDescriptor&& d) {
    into.push_back(std::move(d));
    return into.back().get();
  }

  SdpaOperations& graph_;
  int64_t next_virtual_ = kFirstVirtual;
};

// The value the padding mask gives hidden scores: -inf, which cuDNN before 9.10 did not take there.
float masked_score() {
  return cudnnGetVersion() < 91000 ? std::numeric_limits<float>::lowest()
                                   : -std::numeric_limits<float>::infinity();
}

int64_t round_up_pow2(int64_t n, int64_t at_least) {
  return std::max(at_least, static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(n))));
}

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

// The length arrays' places in the scratch block, each kArrayAlignment-aligned, and their total bytes.
struct ArrayLayout {
  size_t query_rows, key_rows, q_offsets, k_offsets, v_offsets, out_offsets, bytes;
};

ArrayLayout array_layout(int64_t sequences) {
  const size_t lengths = round_up(sizeof(int32_t) * static_cast<size_t>(sequences), kArrayAlignment);
  const size_t offsets = round_up(sizeof(int32_t) * static_cast<size_t>(sequences + 1), kArrayAlignment);
  ArrayLayout layout{};
  layout.query_rows = 0;
  layout.key_rows = lengths;
  layout.q_offsets = 2 * lengths;
  layout.k_offsets = layout.q_offsets + offsets;
  layout.v_offsets = layout.k_offsets + offsets;
  layout.out_offsets = layout.v_offsets + offsets;
  layout.bytes = round_up(layout.out_offsets + offsets, 256);
  return layout;
}

SdpaLengthArrays arrays_at(void* base, int64_t sequences) {
  const ArrayLayout layout = array_layout(sequences);
  auto at = [&](size_t offset) { return reinterpret_cast<int32_t*>(static_cast<char*>(base) + offset); };
  return {at(layout.query_rows), at(layout.key_rows),  at(layout.q_offsets),
          at(layout.k_offsets),  at(layout.v_offsets), at(layout.out_offsets)};
}

void queue_lengths(cudaStream_t stream, const AttentionProblem& problem, const SdpaLengthArrays& arrays) {
  const cudaError_t launched = launch_sdpa_lengths(stream, problem, arrays);
  DLM_CHECK(launched == cudaSuccess, "launching sdpa_lengths failed: {}", cudaGetErrorString(launched));
}

}  // namespace

// ----------------------------------------------------------------------------------------- CudnnDescriptor

CudnnDescriptor::CudnnDescriptor(cudnnBackendDescriptorType_t type) {
  check_cudnn(cudnnBackendCreateDescriptor(type, &descriptor_),
              fmt::format("creating a descriptor of type {}", static_cast<int>(type)));
}

CudnnDescriptor::CudnnDescriptor(CudnnDescriptor&& other) noexcept
    : descriptor_(std::exchange(other.descriptor_, nullptr)) {}

CudnnDescriptor::~CudnnDescriptor() {
  if (descriptor_ != nullptr) cudnnBackendDestroyDescriptor(descriptor_);
}

// ------------------------------------------------------------------------------------------------ the graph

SdpaOperations build_sdpa_operations(const SdpaShape& shape) {
  SdpaOperations graph;
  GraphBuilder g(graph);
  const int64_t b = shape.sequences, hq = shape.query_heads, hk = shape.kv_heads;
  const int64_t sq = shape.max_queries, skv = shape.max_keys;
  const int64_t d = shape.head_dim, dv = shape.value_dim;
  const Dims per_sequence{b, 1, 1, 1}, per_sequence_edge{b + 1, 1, 1, 1}, ones{1, 1, 1, 1};

  // Rows packed as [rows, heads, dim]: a sequence's row r, head h sits at its ragged offset + (r heads + h)
  // dim, so the batch stride is never used.
  auto ragged = [&](const char* name, int64_t uid) {
    return g.tensor({name, uid, CUDNN_DATA_INT32, per_sequence_edge, ones});
  };
  // A bf16 [rows, heads, dim] operand seen as [b, heads, rows, dim], its rows placed by its ragged offsets.
  auto packed = [&](const char* name, int64_t uid, int64_t heads, int64_t rows, int64_t dim,
                    cudnnBackendDescriptor_t offsets) {
    return g.tensor({name,
                     uid,
                     CUDNN_DATA_BFLOAT16,
                     {b, heads, rows, dim},
                     {rows * heads * dim, dim, heads * dim, 1},
                     false,
                     false,
                     offsets});
  };
  const auto q = packed("q", kQ, hq, sq, d, ragged("q_offsets", kQOffsets));
  // K enters transposed ([d, skv] per head), as the first product wants it.
  const auto k_t = g.tensor({"k_transposed",
                             kK,
                             CUDNN_DATA_BFLOAT16,
                             {b, hk, d, skv},
                             {skv * hk * d, d, 1, hk * d},
                             false,
                             false,
                             ragged("k_offsets", kKOffsets)});
  const auto v = packed("v", kV, hk, skv, dv, ragged("v_offsets", kVOffsets));
  const auto out = packed("out", kOut, hq, sq, dv, ragged("out_offsets", kOutOffsets));
  const auto query_rows = g.tensor({"query_rows", kQueryRows, CUDNN_DATA_INT32, per_sequence, ones});
  const auto key_rows = g.tensor({"key_rows", kKeyRows, CUDNN_DATA_INT32, per_sequence, ones});
  const auto scale = g.tensor({"scale", kScale, CUDNN_DATA_FLOAT, ones, ones, false, true});
  const auto masked = g.tensor({"masked_score", kMaskedScore, CUDNN_DATA_FLOAT, ones, ones, false, true});

  const Dims scores{b, hq, sq, skv}, score_strides{hq * sq * skv, sq * skv, skv, 1};
  const Dims per_row{b, hq, sq, 1}, per_row_strides{hq * sq, sq, 1, 1};
  auto scores_of = [&](const char* name, cudnnDataType_t type) {
    return g.intermediate(name, type, scores, score_strides);
  };

  const auto s = scores_of("s", CUDNN_DATA_FLOAT);
  g.matmul("q_k", q, k_t, s, query_rows, key_rows, nullptr);
  const auto scaled = scores_of("scaled", CUDNN_DATA_FLOAT);
  g.pointwise("scale", CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, s, scale, nullptr, scaled);

  // The padding mask: entries past a sequence's query or key rows become masked_score.
  const auto row_index = scores_of("row_index", CUDNN_DATA_INT32);
  g.pointwise("row_index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr, row_index,
              2);
  const auto column_index = scores_of("column_index", CUDNN_DATA_INT32);
  g.pointwise("column_index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr,
              column_index, 3);
  const auto row_inside = scores_of("row_inside", CUDNN_DATA_BOOLEAN);
  g.pointwise("row_inside", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, row_index, query_rows, nullptr,
              row_inside);
  const auto column_inside = scores_of("column_inside", CUDNN_DATA_BOOLEAN);
  g.pointwise("column_inside", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, column_index, key_rows, nullptr,
              column_inside);
  const auto inside = scores_of("inside", CUDNN_DATA_BOOLEAN);
  g.pointwise("inside", CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, row_inside, column_inside, nullptr,
              inside);
  const auto padded = scores_of("padded", CUDNN_DATA_FLOAT);
  g.pointwise("pad", CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, scaled, masked, inside, padded);

  // Softmax over the keys.
  const auto row_max = g.intermediate("row_max", CUDNN_DATA_FLOAT, per_row, per_row_strides);
  g.reduction("row_max", CUDNN_REDUCE_TENSOR_MAX, padded, row_max);
  const auto shifted = scores_of("shifted", CUDNN_DATA_FLOAT);
  g.pointwise("shift", CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, padded, row_max, nullptr, shifted);
  const auto exponent = scores_of("exponent", CUDNN_DATA_FLOAT);
  g.pointwise("exp", CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, shifted, nullptr, nullptr, exponent);
  const auto row_sum = g.intermediate("row_sum", CUDNN_DATA_FLOAT, per_row, per_row_strides);
  g.reduction("row_sum", CUDNN_REDUCE_TENSOR_ADD, exponent, row_sum);
  // cuDNN recognizes the softmax only with its statistics (max + log sum, what training keeps for the
  // backward pass), so they are computed into a tensor nothing reads.
  const auto log_sum = g.intermediate("log_sum", CUDNN_DATA_FLOAT, per_row, per_row_strides);
  g.pointwise("log_sum", CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, row_sum, nullptr, nullptr, log_sum);
  const auto stats = g.intermediate("stats", CUDNN_DATA_FLOAT, per_row, per_row_strides);
  g.pointwise("stats", CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, row_max, log_sum, nullptr, stats);
  // P in the input dtype: the second product's A operand must be.
  const auto p = scores_of("p", CUDNN_DATA_BFLOAT16);
  g.pointwise("normalize", CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, exponent, row_sum, nullptr, p);

  g.matmul("p_v", p, v, out, query_rows, nullptr, key_rows);
  return graph;
}

SdpaShape plan_shape(const AttentionProblem& problem, std::span<const int32_t> host_query_offsets,
                     std::span<const int32_t> host_key_offsets) {
  int64_t max_queries = 0, max_keys = 0;
  for (size_t b = 0; b + 1 < host_query_offsets.size(); ++b) {
    max_queries = std::max<int64_t>(max_queries, host_query_offsets[b + 1] - host_query_offsets[b]);
    max_keys = std::max<int64_t>(max_keys, host_key_offsets[b + 1] - host_key_offsets[b]);
  }
  constexpr int64_t kSmallest = 64;
  return SdpaShape{problem.sequences,
                   round_up_pow2(max_queries, kSmallest),
                   round_up_pow2(max_keys, kSmallest),
                   problem.query_heads,
                   problem.kv_heads,
                   problem.head_dim,
                   problem.value_dim};
}

std::string sdpa_unsupported(const AttentionProblem& problem, std::span<const int32_t> host_query_offsets,
                             std::span<const int32_t> host_key_offsets, int sm_major) {
  if (problem.qkv_dtype != DType::BF16 || problem.out_dtype != DType::BF16)
    return "q, k, v and out are not all bf16";
  if (problem.visibility.kind != VisibilityKind::Bidirectional) return "the visibility is not bidirectional";
  if (problem.softcap != 0.0f) return "a softcap is set";
  if (problem.head_dim % 8 != 0 || problem.value_dim % 8 != 0 || problem.head_dim > 256 ||
      problem.value_dim > 256) {
    return fmt::format("head_dim {} and value_dim {} must be multiples of 8 up to 256", problem.head_dim,
                       problem.value_dim);
  }
  const size_t version = cudnnGetVersion();
  if (version == 91000 || version == 91001) return "cuDNN 9.10.0 and 9.10.1 have known bf16 attention bugs";
  if (sm_major < 9 && version < 91801) {
    return fmt::format("packed rows need compute capability 9.0 (or cuDNN 9.18.1), the device has {}.x",
                       sm_major);
  }
  for (const void* p : {problem.q, problem.k, problem.v, static_cast<const void*>(problem.out)}) {
    if (reinterpret_cast<uintptr_t>(p) % kByteAlignment != 0) return "a tensor is not 16-byte aligned";
  }
  const int64_t widest = std::max(problem.head_dim, problem.value_dim);
  if (std::max(problem.query_rows * problem.query_heads, problem.key_rows * problem.kv_heads) * widest >
      INT_MAX) {
    return "element offsets exceed i32";
  }
  if (host_query_offsets.empty()) return "the batch has no host copy of its offsets";
  for (size_t b = 0; b + 1 < host_query_offsets.size(); ++b) {
    const bool has_queries = host_query_offsets[b + 1] > host_query_offsets[b];
    const bool has_keys = host_key_offsets[b + 1] > host_key_offsets[b];
    if (has_queries && !has_keys) return fmt::format("sequence {} has queries but no keys", b);
  }
  return "";
}

// ------------------------------------------------------------------------------------------ CudnnAttention

// One shape's graph and the execution plan cuDNN's heuristics offered for it; a plan that could not be made
// keeps why, so the shape is not tried again.
struct CudnnAttention::Plan {
  SdpaOperations operations;
  std::vector<CudnnDescriptor> keep_alive;  // the operation graph and engine configs the plan came from
  cudnnBackendDescriptor_t execution = nullptr;
  int64_t workspace = 0;
  std::string why_not;
};

CudnnAttention::CudnnAttention(cudaStream_t stream) : stream_(stream) {
  check_cudnn(cudnnCreate(&handle_), "cudnnCreate");
  const cudnnStatus_t status = cudnnSetStream(handle_, stream);
  if (status != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(handle_);
    check_cudnn(status, "cudnnSetStream");
  }
  const cudaError_t allocated = cudaMalloc(&kept_arrays_, array_layout(kMaxKeptSequences).bytes);
  if (allocated != cudaSuccess) {
    cudaGetLastError();  // not sticky
    cudnnDestroy(handle_);
    fail("allocating cuDNN attention's length arrays failed: {}", cudaGetErrorString(allocated));
  }
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();  // the plans refer to the handle
  if (handle_ != nullptr) cudnnDestroy(handle_);
  cudaFree(kept_arrays_);
}

size_t CudnnAttention::length_array_bytes(const SdpaShape& shape) {
  return array_layout(shape.sequences).bytes;
}

size_t CudnnAttention::workspace_bytes(const SdpaShape& shape, std::string& why_not) {
  std::unique_ptr<Plan>& slot = plans_[shape];
  if (!slot) {
    slot = std::make_unique<Plan>();
    Plan& plan = *slot;
    try {
      plan.operations = build_sdpa_operations(shape);
      CudnnDescriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
      std::vector<cudnnBackendDescriptor_t> ops;
      for (const CudnnDescriptor& op : plan.operations.operations) ops.push_back(op.get());
      set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
          static_cast<int64_t>(ops.size()), ops.data(), "the operation graph");
      set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "the operation graph");
      finalize(graph, "the operation graph");
      const cudnnBackendDescriptor_t graph_raw = graph.get();
      plan.keep_alive.push_back(std::move(graph));

      CudnnDescriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
      set(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph_raw,
          "the engine heuristics");
      set(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "the engine heuristics");
      finalize(heuristics, "the engine heuristics");
      int64_t offered = 0;
      check_cudnn(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &offered, nullptr),
                  "counting the heuristics' engine configs");
      std::vector<CudnnDescriptor> configs;
      std::vector<cudnnBackendDescriptor_t> config_raw;
      for (int64_t i = 0; i < offered; ++i) {
        configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        config_raw.push_back(configs.back().get());
      }
      int64_t returned = 0;
      check_cudnn(
          cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, offered, &returned, config_raw.data()),
          "reading the heuristics' engine configs");
      std::string last_refusal = "the heuristics offered no engine";
      for (int64_t i = 0; i < returned && plan.execution == nullptr; ++i) {
        CudnnDescriptor execution(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        set(execution, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "an execution plan");
        set(execution, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
            &config_raw[i], "an execution plan");
        try {
          finalize(execution, fmt::format("the execution plan of engine config {}", i));
        } catch (const Error& refusal) {
          last_refusal = refusal.what();
          continue;
        }
        check_cudnn(cudnnBackendGetAttribute(execution.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, nullptr, &plan.workspace),
                    "reading the plan's workspace size");
        plan.execution = execution.get();
        plan.keep_alive.push_back(std::move(execution));
      }
      for (CudnnDescriptor& config : configs) plan.keep_alive.push_back(std::move(config));
      if (plan.execution == nullptr) plan.why_not = last_refusal;
    } catch (const Error& refusal) {
      plan.why_not = refusal.what();
    }
  }
  why_not = slot->why_not;
  return slot->execution != nullptr ? static_cast<size_t>(slot->workspace) : 0;
}

bool CudnnAttention::keep_lengths(const AttentionProblem& problem,
                                  std::span<const int32_t> host_query_offsets,
                                  std::span<const int32_t> host_key_offsets) {
  if (problem.sequences > kMaxKeptSequences) return false;
  const int64_t rows[4] = {problem.query_heads * problem.head_dim, problem.kv_heads * problem.head_dim,
                           problem.kv_heads * problem.value_dim, problem.query_heads * problem.value_dim};
  KeptLengths& kept = kept_lengths_;
  const bool same = kept.valid && kept.query_offsets == problem.query_offsets &&
                    kept.key_offsets == problem.key_offsets && std::ranges::equal(kept.rows, rows) &&
                    std::ranges::equal(kept.host_query_offsets, host_query_offsets) &&
                    std::ranges::equal(kept.host_key_offsets, host_key_offsets);
  if (same) return true;
  queue_lengths(stream_, problem, arrays_at(kept_arrays_, problem.sequences));
  kept.valid = true;
  kept.query_offsets = problem.query_offsets;
  kept.key_offsets = problem.key_offsets;
  std::ranges::copy(rows, kept.rows);
  kept.host_query_offsets.assign(host_query_offsets.begin(), host_query_offsets.end());
  kept.host_key_offsets.assign(host_key_offsets.begin(), host_key_offsets.end());
  return true;
}

void CudnnAttention::run(const AttentionProblem& problem, const SdpaShape& shape,
                         std::span<const int32_t> host_query_offsets,
                         std::span<const int32_t> host_key_offsets, void* scratch) {
  const Plan& plan = *plans_.at(shape);
  auto* base = static_cast<char*>(scratch);
  const ArrayLayout layout = array_layout(shape.sequences);
  SdpaLengthArrays arrays;
  if (keep_lengths(problem, host_query_offsets, host_key_offsets)) {
    arrays = arrays_at(kept_arrays_, shape.sequences);
  } else {
    arrays = arrays_at(base, shape.sequences);
    queue_lengths(stream_, problem, arrays);
  }

  // By-value tensors are read from the host during the execute call.
  float scale = problem.scale;
  float masked = masked_score();
  const std::array<int64_t, 12> uids{kQ,     kK,           kV,        kOut,      kQueryRows, kKeyRows,
                                     kScale, kMaskedScore, kQOffsets, kKOffsets, kVOffsets,  kOutOffsets};
  const std::array<void*, 12> pointers{const_cast<void*>(problem.q),
                                       const_cast<void*>(problem.k),
                                       const_cast<void*>(problem.v),
                                       problem.out,
                                       arrays.query_rows,
                                       arrays.key_rows,
                                       &scale,
                                       &masked,
                                       arrays.q_offsets,
                                       arrays.k_offsets,
                                       arrays.v_offsets,
                                       arrays.out_offsets};
  void* workspace = base + layout.bytes;
  CudnnDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.size(), uids.data(),
      "the variant pack");
  set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.size(), pointers.data(),
      "the variant pack");
  set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "the variant pack");
  finalize(pack, "the variant pack");
  check_cudnn(cudnnBackendExecute(handle_, plan.execution, pack.get()), "executing the attention plan");
}

}  // namespace dlm::cuda
