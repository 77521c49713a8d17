// CudaBackend::linear: out[M,N] = x[M,K] * W[N,K]^T (+ bias[N]) through cuBLASLt, f32 accumulation
// (CUBLAS_COMPUTE_32F: no TF32 for f32 inputs, so f32 results match the CPU's within f32 rounding).
//
// cuBLASLt is column-major, so it computes out^T[N,M] = W[N,K] * x^T[K,M]: A = W stored K x N (ld K, op T),
// B = x stored K x M (ld K, op N), D = out stored N x M (ld N); the bias runs along D's rows, one per output
// feature.
//
// Types. cuBLASLt with CUBLAS_COMPUTE_32F takes A and B of one type (f32, bf16 or f16) and writes D of that
// type, or f32 for 16-bit inputs; it does not take mixed A/B types. The product is computed in f32 for f32 x
// (a bf16/f16 weight is widened into scratch, exactly, as the CPU backend does: f32 activations give the
// CPU's results whatever the checkpoint's dtype, at the price of N*K*4 bytes of scratch and no tensor cores:
// the precise mode, for tests and references) and in the weight's dtype for bf16 x (the tensor-core
// path; bf16 x with f32 W is widened, exact; bf16 x with f16 W is rounded to nearest even to f16, which
// overflows to inf beyond 65504). The bias epilogue needs a bias of D's type: one of
// another dtype is widened into scratch (exact), and the epilogue is used with an f32 D only (see below).
// Where D cannot be the output (bf16 out with an f32 or f16 weight, or a bias with a bf16 out), or the
// heuristic offers no algorithm with the bias epilogue, the product is written in f32 and linear_finish adds
// the bias in f32 and rounds once.
//
// The descriptors and the heuristic's choice are made once per problem (LinearAlgoKey) and kept in the
// Context, so a call only sets the bias pointer and queues its kernels. With CudaOptions::tune_gemm the
// choice is instead the fastest of a wider set of candidates, timed on the problem's first call
// (linear_tuning.h).
#include <cublasLt.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/linear_kernels.h"
#include "engine/backend/cuda/linear_tuning.h"

namespace dlm {
namespace {

constexpr size_t kScratchAlignment = 256;  // cudaMalloc's alignment, kept by every part of the scratch
constexpr int kTunedOffers = 32;           // the heuristic's offers among CudaOptions::tune_gemm's candidates

bool is_float(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
}

cudaDataType_t lt_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      fail("linear: {} is not a cuBLASLt float type", dtype_name(dtype));
  }
}

// Whether cuBLASLt multiplies inputs of dtype `ab` into an output of dtype `d` with CUBLAS_COMPUTE_32F.
bool lt_writes(DType ab, DType d) {
  return d == ab || (d == DType::F32 && ab != DType::F32);
}

// The largest power of two up to 256 dividing the address.
int alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int alignment = 1;
  while (alignment < 256 && address % (2 * static_cast<uintptr_t>(alignment)) == 0) alignment *= 2;
  return alignment;
}

size_t round_up(size_t bytes) {
  return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

// The descriptor keeps the bias pointer, not the bias: it is set again for each call (a host-side write).
void set_bias(LinearPlan& plan, const void* bias) {
  DLM_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
}

class LtPreference {
 public:
  LtPreference() { DLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_)); }
  ~LtPreference() {
    if (pref_ != nullptr) cublasLtMatmulPreferenceDestroy(pref_);
  }
  LtPreference(const LtPreference&) = delete;
  LtPreference& operator=(const LtPreference&) = delete;

  template <class T>
  void set(cublasLtMatmulPreferenceAttributes_t attribute, T value) {
    DLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref_, attribute, &value, sizeof value));
  }
  cublasLtMatmulPreference_t get() const { return pref_; }

 private:
  cublasLtMatmulPreference_t pref_ = nullptr;
};

// The plan for `key`, made on its first use and kept in the Context. With the bias epilogue the heuristic
// reads the bias pointer's alignment, so `bias` is set before it is asked: every bias linear() passes is
// 256-byte aligned, which keeps its answer good for the bias pointers of later calls.
LinearPlan& find_plan(CudaBackend::Context& ctx, const LinearAlgoKey& key, const void* bias) {
  auto it = ctx.linear_plans.find(key);
  if (it != ctx.linear_plans.end()) return *it->second;
  auto plan = std::make_unique<LinearPlan>();
  DLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cublasOperation_t keep = CUBLAS_OP_N;
  DLM_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
  DLM_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep));
  if (key.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    DLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                    sizeof epilogue));
    set_bias(*plan, bias);
  }
  const auto ab = static_cast<cudaDataType_t>(key.ab_type);
  const auto d = static_cast<cudaDataType_t>(key.d_type);
  const auto m = static_cast<uint64_t>(key.m);
  const auto n = static_cast<uint64_t>(key.n);
  const auto k = static_cast<uint64_t>(key.k);
  DLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, ab, k, n, key.k));
  DLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, ab, k, m, key.k));
  DLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->d, d, n, m, key.n));

  LtPreference pref;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(ctx.workspace_bytes));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(key.align_a));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(key.align_b));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(key.align_d));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(key.align_d));
  // Split-K partial sums are added in f32 only: an in-place or output-type reduction adds them in D's dtype,
  // which for a bf16 D erred by several ulps. Batch-invariant products allow no reduction, so no split K.
  pref.set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
           static_cast<uint32_t>(ctx.batch_invariant ? CUBLASLT_REDUCTION_SCHEME_NONE
                                                     : CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE));
  std::array<cublasLtMatmulHeuristicResult_t, kTunedOffers> results{};
  int count = 0;
  const int wanted = ctx.tune_gemm ? kTunedOffers : 1;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      ctx.lt, plan->desc, plan->a, plan->b, plan->d, plan->d, pref.get(), wanted, results.data(), &count);
  DLM_CHECK(status == CUBLAS_STATUS_SUCCESS || status == CUBLAS_STATUS_NOT_SUPPORTED,
            "linear: cublasLtMatmulAlgoGetHeuristic failed for M={} N={} K={}: cuBLAS status {}", key.m,
            key.n, key.k, static_cast<int>(status));
  if (status == CUBLAS_STATUS_SUCCESS) {
    for (int i = 0; i < count; ++i) {
      if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS)
        plan->candidates.push_back(results[static_cast<size_t>(i)].algo);
    }
  }
  if (ctx.tune_gemm && !plan->candidates.empty()) cuda::add_tuning_candidates(ctx, key, *plan);
  plan->found = !plan->candidates.empty();
  if (plan->found) plan->algo = plan->candidates.front();
  if (plan->candidates.size() < 2) plan->candidates.clear();  // nothing to choose between
  return *ctx.linear_plans.emplace(key, std::move(plan)).first->second;
}

}  // namespace

LinearPlan::~LinearPlan() {
  if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
  if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
  if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
  if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
}

void CudaBackend::linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                         const Tensor& out) {
  Context& ctx = *context_;
  DLM_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16,
            "linear on CUDA: x must be f32 or bf16, got {}", x.describe());
  DLM_CHECK(is_float(weight.dtype()), "linear on CUDA: weight must be f32, bf16 or f16, got {}",
            weight.describe());
  DLM_CHECK(is_float(out.dtype()), "linear on CUDA: out must be f32, bf16 or f16, got {}", out.describe());
  DLM_CHECK(!bias || is_float(bias->dtype()), "linear on CUDA: bias must be f32, bf16 or f16, got {}",
            bias->describe());
  const int64_t m = x.dim(0);
  const int64_t k = x.dim(1);
  const int64_t n = weight.dim(0);
  if (m == 0 || n == 0) return;
  ctx.make_current();
  const void* bias_data = bias ? bias->data() : nullptr;
  const DType bias_dtype = bias ? bias->dtype() : DType::F32;
  if (k == 0) {  // an empty sum: the bias, or zero
    check_launch(
        cuda::launch_linear_finish(ctx.stream, nullptr, bias_data, bias_dtype, out.data(), out.dtype(), m, n),
        "linear");
    return;
  }

  const DType ab = x.dtype() == DType::F32 ? DType::F32 : weight.dtype();  // the dtype multiplied in
  const DType od = out.dtype();
  const bool convert_w = weight.dtype() != ab;
  const bool convert_x = x.dtype() != ab;
  // Scratch, in 256-byte aligned parts: [W in ab][x in ab][bias in D's dtype | f32 product].
  const size_t w_bytes = convert_w ? round_up(static_cast<size_t>(n * k) * dtype_size(ab)) : 0;
  const size_t x_bytes = convert_x ? round_up(static_cast<size_t>(m * k) * dtype_size(ab)) : 0;
  const size_t operand_bytes = w_bytes + x_bytes;

  LinearAlgoKey key;
  key.m = m;
  key.n = n;
  key.k = k;
  key.ab_type = lt_type(ab);
  key.align_a = convert_w ? 256 : alignment_of(weight.data());
  key.align_b = convert_x ? 256 : alignment_of(x.data());

  // Direct: cuBLASLt writes out itself, with the bias in its epilogue. Only into f32: with a bf16 D the
  // epilogue was seen to round the product before adding the bias (errors of ~2 ulps on an H200), so a
  // narrow output with a bias takes the f32 product and linear_finish, which rounds once.
  bool direct = lt_writes(ab, od) && (!bias || od == DType::F32);
  const bool copy_bias = bias && (bias->dtype() != od || alignment_of(bias->data()) < 256);
  void* scratch = nullptr;
  const void* lt_bias = bias_data;
  LinearPlan* plan = nullptr;
  if (direct) {
    const size_t bias_bytes = copy_bias ? round_up(static_cast<size_t>(n) * dtype_size(od)) : 0;
    if (operand_bytes + bias_bytes > 0) scratch = ctx.reserve_scratch(operand_bytes + bias_bytes);
    if (copy_bias) lt_bias = static_cast<char*>(scratch) + operand_bytes;
    key.d_type = lt_type(od);
    key.bias = bias.has_value();
    key.align_d = alignment_of(out.data());
    plan = &find_plan(ctx, key, lt_bias);
    direct = plan->found;
  }
  float* acc = nullptr;  // the f32 product awaiting linear_finish
  if (!direct) {
    const bool acc_in_scratch = od != DType::F32;
    const size_t acc_bytes = acc_in_scratch ? static_cast<size_t>(m * n) * sizeof(float) : 0;
    scratch = operand_bytes + acc_bytes > 0 ? ctx.reserve_scratch(operand_bytes + acc_bytes) : nullptr;
    acc = acc_in_scratch ? reinterpret_cast<float*>(static_cast<char*>(scratch) + operand_bytes)
                         : static_cast<float*>(out.data());
    key.d_type = CUDA_R_32F;
    key.bias = false;
    key.align_d = alignment_of(acc);
    lt_bias = nullptr;
    plan = &find_plan(ctx, key, nullptr);
    DLM_CHECK(plan->found, "linear: cuBLASLt offers no algorithm for x {} times weight {} into f32",
              x.describe(), weight.describe());
  }

  const void* w_data = weight.data();
  if (convert_w) {
    check_launch(cuda::launch_cast(ctx.stream, weight.data(), weight.dtype(), scratch, ab, n * k),
                 "linear (weight widening)");
    w_data = scratch;
  }
  const void* x_data = x.data();
  if (convert_x) {
    void* converted = static_cast<char*>(scratch) + w_bytes;
    check_launch(cuda::launch_cast(ctx.stream, x.data(), x.dtype(), converted, ab, m * k),
                 "linear (x conversion)");
    x_data = converted;
  }
  if (direct && copy_bias) {
    check_launch(cuda::launch_cast(ctx.stream, bias_data, bias_dtype, const_cast<void*>(lt_bias), od, n),
                 "linear (bias conversion)");
  }

  if (key.bias) set_bias(*plan, lt_bias);
  void* d = direct ? out.data() : static_cast<void*>(acc);
  if (!plan->candidates.empty() && !ctx.recording) cuda::tune(ctx, key, *plan, w_data, x_data, d);
  DLM_CUBLAS_CHECK(cuda::queue_matmul(ctx, *plan, plan->algo, w_data, x_data, d));
  if (!direct && (bias || od != DType::F32)) {
    check_launch(cuda::launch_linear_finish(ctx.stream, acc, bias_data, bias_dtype, out.data(), od, m, n),
                 "linear (bias and narrowing)");
  }
}

}  // namespace dlm
