// CudaBackend::linear against CpuBackend, the reference: odd shapes, every weight, activation, bias and
// output dtype, misaligned operands, NaN/Inf and guard bytes.
//
// Tolerance: |gpu - cpu| <= (K + 2) * 2^-22 * S per element, S = sum_k |x_k w_k| + |bias| (in double). Any
// order of summing K + 1 terms errs by at most (K + 1) u S (u = 2^-24) plus the products' own roundings, on
// each side; 2^-22 = 4u also covers tensor cores that accumulate with truncation instead of rounding. Both
// sides see the same operands: f32 x multiplies in f32 on both (16-bit weights widened exactly); where the
// GPU converts bf16 x to an f16 weight's dtype (rounding to nearest even), the CPU is given x rounded the
// same way. A bf16/f16 output adds 2^-8 |cpu| (half an ulp is 2^-9). Products of small integers are exact
// everywhere, so that case must match bit for bit. NaN must match NaN, +-inf must match exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/buffer.h"
#include "tests/gpu/device_checks.h"

namespace dlm {
namespace {

using namespace gpu_test;

struct LinearSetup {
  int64_t m, n, k;
  DType x_dtype, w_dtype, out_dtype;
  std::optional<DType> bias_dtype;
  bool misaligned = false;  // every operand one element past a 256-byte boundary
  uint32_t seed = 1;

  std::string str() const {
    std::string s = "linear M=";
    s += std::to_string(m);
    s += " N=";
    s += std::to_string(n);
    s += " K=";
    s += std::to_string(k);
    s += " x ";
    s += dtype_name(x_dtype);
    s += " W ";
    s += dtype_name(w_dtype);
    s += " bias ";
    s += bias_dtype ? dtype_name(*bias_dtype) : std::string_view("none");
    s += " out ";
    s += dtype_name(out_dtype);
    if (misaligned) s += " misaligned by one element";
    return s;
  }
};

struct LinearData {
  std::vector<float> x, w, bias;  // values as held by tensors of the setup's dtypes
};

LinearData linear_data(const LinearSetup& s) {
  LinearData d;
  d.x = rounded(s.x_dtype, uniform_values(s.m * s.k, s.seed));
  d.w = rounded(s.w_dtype, uniform_values(s.n * s.k, s.seed + 1));
  if (s.bias_dtype) d.bias = rounded(*s.bias_dtype, uniform_values(s.n, s.seed + 2));
  return d;
}

// A device copy of a host tensor placed `misalign` bytes past a 256-byte boundary.
DeviceTensor to_device_at(const HostTensor& host, size_t misalign) {
  DeviceTensor d;
  d.buffer = gpu().allocate(host.tensor().nbytes() + 256 + misalign);
  d.tensor = d.buffer.view(host.tensor().dtype(), host.tensor().shape(), 256 + misalign);
  gpu().copy(host.tensor(), d.tensor);
  return d;
}

// The GPU's output (widened to f32), its guards checked.
std::vector<float> gpu_linear(const LinearSetup& s, const LinearData& d, CudaBackend& on = gpu()) {
  const HostTensor x = host_tensor(s.x_dtype, {s.m, s.k}, d.x);
  const HostTensor w = host_tensor(s.w_dtype, {s.n, s.k}, d.w);
  const DeviceTensor dx = to_device_at(x, s.misaligned ? dtype_size(s.x_dtype) : 0);
  const DeviceTensor dw = to_device_at(w, s.misaligned ? dtype_size(s.w_dtype) : 0);
  std::optional<DeviceTensor> db;
  std::optional<Tensor> bias;
  if (s.bias_dtype) {
    db =
        to_device_at(host_tensor(*s.bias_dtype, {s.n}, d.bias), s.misaligned ? dtype_size(*s.bias_dtype) : 0);
    bias = db->tensor;
  }
  Guarded out = guarded(s.out_dtype, {s.m, s.n}, s.misaligned ? dtype_size(s.out_dtype) : 0);
  on.linear(dx.tensor, dw.tensor, bias, out.tensor);
  on.synchronize();
  expect_guards_intact(out, s.str());
  return values_of(to_host(out.tensor));
}

// The CPU's output for the operands the GPU multiplies (x in the dtype of the product: f32 for f32 x, the
// weight's for bf16 x), and the tolerance.
void cpu_linear(const LinearSetup& s, const LinearData& d, std::vector<float>& want,
                std::vector<double>& tol) {
  const std::vector<float> x_eff = rounded(s.x_dtype == DType::F32 ? DType::F32 : s.w_dtype, d.x);
  const HostTensor x = host_tensor(DType::F32, {s.m, s.k}, x_eff);
  const HostTensor w = host_tensor(s.w_dtype, {s.n, s.k}, d.w);
  std::optional<HostTensor> b;
  std::optional<Tensor> bias;
  if (s.bias_dtype) {
    b = host_tensor(*s.bias_dtype, {s.n}, d.bias);
    bias = b->tensor();
  }
  HostTensor out(DType::F32, {s.m, s.n});
  cpu().linear(x, w, bias, out);
  want = out.to_vector<float>();
  tol.assign(want.size(), 0.0);
  const double per_term = static_cast<double>(s.k + 2) * std::ldexp(1.0, -22);
  const bool narrow_out = s.out_dtype != DType::F32;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double sum = s.bias_dtype ? std::fabs(d.bias[j]) : 0.0;
      for (int64_t kk = 0; kk < s.k; ++kk) sum += std::fabs(double(x_eff[i * s.k + kk]) * d.w[j * s.k + kk]);
      double t = per_term * sum;
      if (narrow_out) t += std::ldexp(1.0, -8) * std::fabs(want[i * s.n + j]) + std::ldexp(1.0, -8) * t;
      tol[i * s.n + j] = t;
    }
  }
}

void check_linear(const LinearSetup& s, CudaBackend& on = gpu()) {
  SCOPED_TRACE(s.str());
  const LinearData d = linear_data(s);
  std::vector<float> want;
  std::vector<double> tol;
  cpu_linear(s, d, want, tol);
  expect_close(gpu_linear(s, d, on), want, tol, s.str());
}

// Operands of small integers in [-2, 2] (x, W, then the bias where the setup has one): every product and
// partial sum is exact in f32 for K up to ~4 million, so any summation order gives the CPU's bits.
LinearData small_integer_data(const LinearSetup& s, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> small(-2, 2);
  LinearData d;
  for (int64_t i = 0; i < s.m * s.k; ++i) d.x.push_back(float(small(gen)));
  for (int64_t i = 0; i < s.n * s.k; ++i) d.w.push_back(float(small(gen)));
  if (s.bias_dtype) {
    for (int64_t i = 0; i < s.n; ++i) d.bias.push_back(float(small(gen)));
  }
  return d;
}

// The GPU's output equals the CPU's bit for bit (NaN with NaN).
void expect_exact(const LinearSetup& s, const LinearData& d, const std::string& what,
                  CudaBackend& on = gpu()) {
  std::vector<float> want;
  std::vector<double> tol;
  cpu_linear(s, d, want, tol);
  std::fill(tol.begin(), tol.end(), 0.0);
  expect_close(gpu_linear(s, d, on), want, tol, s.str() + " (" + what + ")");
}

struct Shape3 {
  int64_t m, n, k;
};

// Every M in {1, 3, 17, 128, 300}, N and K in {1, 7, 33, 250, 4096} (none a multiple of 8 but 4096), each at
// least twice.
const Shape3 kLinearShapes[] = {{1, 1, 1},       {3, 7, 33},      {17, 33, 7},     {128, 250, 250},
                                {300, 4096, 33}, {1, 4096, 4096}, {17, 250, 4096}, {300, 7, 4096},
                                {3, 4096, 1},    {128, 1, 250},   {300, 33, 250},  {17, 1, 7},
                                {128, 7, 1},     {1, 250, 33}};

TEST(CudaLinear, EveryWeightAndActivationDtypeMatchesCpu) {
  DLM_SKIP_WITHOUT_GPU();
  uint32_t seed = 10;
  for (const Shape3& shape : kLinearShapes) {
    for (DType w : {DType::F32, DType::BF16, DType::F16}) {
      for (DType x : {DType::F32, DType::BF16}) {
        for (bool with_bias : {false, true}) {
          LinearSetup s{shape.m, shape.n, shape.k, x, w, DType::F32, std::nullopt};
          if (with_bias) s.bias_dtype = w;
          s.seed = seed++;
          check_linear(s);
        }
      }
    }
  }
}

TEST(CudaLinear, NarrowOutputsAndMixedBiasDtypesMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  uint32_t seed = 500;
  for (const Shape3& shape : kLinearShapes) {
    // bf16 output: direct from cuBLASLt with a bf16 weight and bias; through the f32 product otherwise.
    for (DType w : {DType::F32, DType::BF16, DType::F16}) {
      for (std::optional<DType> bias :
           {std::optional<DType>{}, std::optional<DType>{w}, std::optional<DType>{DType::F32}}) {
        LinearSetup s{shape.m, shape.n, shape.k, DType::BF16, w, DType::BF16, bias};
        s.seed = seed++;
        check_linear(s);
      }
    }
    // f32 output with a bias of another dtype than the weight (widened for the epilogue).
    for (DType bias : {DType::BF16, DType::F16}) {
      LinearSetup s{shape.m, shape.n, shape.k, DType::F32, DType::BF16, DType::F32, bias};
      s.seed = seed++;
      check_linear(s);
    }
  }
}

TEST(CudaLinear, LargeProductMatchesCpu) {
  DLM_SKIP_WITHOUT_GPU();
  for (DType w : {DType::F32, DType::BF16, DType::F16}) {
    LinearSetup s{128, 4096, 4096, DType::F32, w, DType::F32, w};
    s.seed = 900 + static_cast<uint32_t>(w);
    check_linear(s);
  }
}

TEST(CudaLinear, MisalignedOperandsMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // Every operand one element (4 bytes for f32, 2 for bf16/f16) off 256-byte alignment: cuBLASLt is told
  // their alignment, and a misaligned bias is copied for the epilogue.
  uint32_t seed = 1000;
  for (const Shape3& shape : {Shape3{17, 250, 33}, Shape3{128, 33, 250}, Shape3{3, 4096, 7}}) {
    for (DType w : {DType::F32, DType::BF16, DType::F16}) {
      LinearSetup s{shape.m, shape.n, shape.k, w == DType::F16 ? DType::F32 : w, w, DType::F32, w};
      s.misaligned = true;
      s.seed = seed++;
      check_linear(s);
      LinearSetup narrow{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, DType::BF16, DType::BF16};
      narrow.misaligned = true;
      narrow.seed = seed++;
      check_linear(narrow);
    }
  }
}

TEST(CudaLinear, ExactProductsMatchBitForBit) {
  DLM_SKIP_WITHOUT_GPU();
  // Small integers: every product and partial sum is exact in f32 (|sum| <= 4 * 4096 + 3 < 2^24), so any
  // difference is a wrong element, not rounding.
  for (DType w : {DType::F32, DType::BF16, DType::F16}) {
    for (const Shape3& shape : {Shape3{17, 33, 4096}, Shape3{300, 250, 7}, Shape3{1, 7, 250}}) {
      LinearSetup s{shape.m, shape.n, shape.k, DType::F32, w, DType::F32, w};
      expect_exact(s, small_integer_data(s, 77), "exact");
    }
  }
}

TEST(CudaLinear, RepeatedCallsGiveIdenticalBits) {
  DLM_SKIP_WITHOUT_GPU();
  // The second call takes the cached algorithm; cuBLASLt is deterministic for one algorithm.
  for (DType w : {DType::F32, DType::BF16}) {
    LinearSetup s{300, 250, 4096, DType::F32, w, DType::F32, w};
    const LinearData d = linear_data(s);
    const std::vector<float> first = gpu_linear(s, d);
    const std::vector<float> second = gpu_linear(s, d);
    ASSERT_EQ(first.size(), second.size());
    EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0) << s.str();
  }
}

// A backend that times cuBLASLt's candidates (CudaOptions::tune_gemm) on dLLM-like shapes, first calls and
// cached choices alike: within the CPU's tolerance, and bit for bit on exact products whatever order the
// chosen algorithm sums in.
TEST(CudaLinear, TunedAlgorithmsMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  static CudaBackend tuned(0, CudaOptions{CudaAttention::Auto, false, true});
  uint32_t seed = 1500;
  for (const Shape3& shape : {Shape3{384, 512, 1024}, Shape3{32, 2048, 1024}, Shape3{300, 250, 4096}}) {
    for (int call = 0; call < 2; ++call) {
      LinearSetup narrow{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, DType::BF16, std::nullopt};
      narrow.seed = seed++;
      check_linear(narrow, tuned);
      LinearSetup biased{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, DType::F32, DType::BF16};
      biased.seed = seed++;
      check_linear(biased, tuned);
    }
  }
  LinearSetup s{64, 33, 4096, DType::BF16, DType::BF16, DType::F32, std::nullopt};
  expect_exact(s, small_integer_data(s, 78), "exact, tuned", tuned);
  // Each shape was timed once, on its first call; the choice is the fastest, the first offer included.
  ASSERT_FALSE(tuned.tuned_products().empty());
  for (const CudaBackend::TunedProduct& product : tuned.tuned_products()) {
    SCOPED_TRACE(product.choice);
    EXPECT_GE(product.timed, 1);
    EXPECT_GT(product.chosen_us, 0.0);
    EXPECT_LE(product.chosen_us, product.first_offer_us);
    EXPECT_TRUE(product.choice.starts_with("algo ")) << product.choice;
  }
}

// bf16 products of few rows and long K, the shapes of a block against the cache and of AR decoding, where
// cuBLASLt's algorithms split K: the partial sums are added in f32 (a reduction in a bf16 output erred by 8
// bf16 ulps on M=33 N=250 K=1000), for every bias and output dtype.
TEST(CudaLinear, FewRowProductsMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  uint32_t seed = 1700;
  for (const Shape3& shape :
       {Shape3{1, 129, 8}, Shape3{8, 1, 56}, Shape3{9, 300, 1000}, Shape3{24, 127, 4104},
        Shape3{32, 520, 12288}, Shape3{32, 4096, 4096}, Shape3{33, 250, 1000}}) {
    for (std::optional<DType> bias :
         {std::optional<DType>{}, std::optional<DType>{DType::BF16}, std::optional<DType>{DType::F32}}) {
      for (DType out : {DType::F32, DType::BF16}) {
        LinearSetup s{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, out, bias};
        s.seed = seed++;
        check_linear(s);
      }
    }
  }
}

// Small integers make every partial sum exact, so whatever split of K the algorithm takes must give the
// CPU's bits; a NaN in x and an inf in W reach exactly the rows and columns they do on the CPU.
TEST(CudaLinear, FewRowProductsAreExactAndPropagateNonFinite) {
  DLM_SKIP_WITHOUT_GPU();
  for (const Shape3& shape : {Shape3{5, 200, 4096}, Shape3{32, 130, 12296}}) {
    LinearSetup s{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, DType::F32, DType::F32};
    LinearData d = small_integer_data(s, 79);
    expect_exact(s, d, "exact");

    d.x[3 * s.k + s.k - 1] = kNaN;  // row 3, at the end of K
    d.w[129 * s.k + 7] = kInf;      // column 129, at the start of K
    expect_exact(s, d, "NaN/inf");
  }
}

// A batch-invariant backend gives a row the same bits whatever the number of rows multiplied with it, on
// shapes as deep as LLaDA-8B's and Qwen2.5-7B's products (K of 3,584 to 18,944), where the default choices
// may split K for few rows and not for many.
TEST(CudaLinear, BatchInvariantProductsGiveARowTheSameBitsAtEveryRowCount) {
  DLM_SKIP_WITHOUT_GPU();
  static CudaBackend invariant(0, CudaOptions{.batch_invariant = true});
  for (const Shape3& shape : {Shape3{256, 1024, 12288}, Shape3{64, 896, 18944}, Shape3{64, 4608, 3584}}) {
    for (std::optional<DType> bias : {std::optional<DType>{}, std::optional<DType>{DType::BF16}}) {
      LinearSetup all{shape.m, shape.n, shape.k, DType::BF16, DType::BF16, DType::BF16, bias};
      const LinearData d = linear_data(all);
      const std::vector<float> together = gpu_linear(all, d, invariant);
      for (const int64_t rows : {int64_t{1}, int64_t{2}, int64_t{8}, int64_t{32}}) {
        LinearSetup some = all;
        some.m = rows;
        LinearData first = d;
        first.x.resize(static_cast<size_t>(rows * shape.k));
        const std::vector<float> alone = gpu_linear(some, first, invariant);
        EXPECT_EQ(std::memcmp(alone.data(), together.data(), alone.size() * sizeof(float)), 0)
            << "the first " << rows << " rows of " << all.str();
      }
    }
  }
}

TEST(CudaLinear, EmptyShapes) {
  DLM_SKIP_WITHOUT_GPU();
  // K == 0: the output is the bias (bit for bit, -0 included) or zero.
  for (DType out_dtype : {DType::F32, DType::BF16}) {
    for (bool with_bias : {false, true}) {
      LinearSetup s{3, 7, 0, DType::F32, DType::BF16, out_dtype, std::nullopt};
      if (with_bias) s.bias_dtype = DType::BF16;
      LinearData d;
      if (with_bias) d.bias = {1.5f, -0.0f, -2.25f, 0.0f, 100.0f, -7.0f, 3.0f};
      const std::vector<float> got = gpu_linear(s, d);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          const float want = with_bias ? d.bias[j] : 0.0f;
          EXPECT_EQ(std::signbit(got[i * s.n + j]), std::signbit(want)) << s.str();
          EXPECT_EQ(got[i * s.n + j], want) << s.str() << " at " << i << "," << j;
        }
      }
    }
  }
  // M == 0 or N == 0: nothing is written (the guards around an empty output stay).
  for (const Shape3& shape : {Shape3{0, 7, 33}, Shape3{3, 0, 33}}) {
    LinearSetup s{shape.m, shape.n, shape.k, DType::F32, DType::F32, DType::F32, DType::F32};
    const LinearData d = linear_data(s);
    EXPECT_TRUE(gpu_linear(s, d).empty());
  }
}

TEST(CudaLinear, NonFiniteValuesPropagateAsOnCpu) {
  DLM_SKIP_WITHOUT_GPU();
  for (DType w : {DType::F32, DType::BF16}) {
    LinearSetup s{17, 33, 250, DType::F32, w, DType::F32, DType::F32};
    LinearData d = linear_data(s);
    d.x[5 * s.k + 100] = kNaN;  // row 5: NaN
    d.bias[3] = kInf;           // column 3: +inf (NaN in row 5)
    std::vector<float> want;
    std::vector<double> tol;
    cpu_linear(s, d, want, tol);
    expect_close(gpu_linear(s, d), want, tol, s.str() + " (NaN/inf)");
  }
}

}  // namespace
}  // namespace dlm
