// CudaBackend::linear and CudaBackend::attention against CpuBackend, the reference: odd shapes, every weight,
// activation, bias and output dtype, every visibility rule, GQA, ragged batches, NaN/Inf and guard bytes.
//
// Tolerances (each check says which it uses):
// - linear: |gpu - cpu| <= (K + 2) * 2^-22 * S per element, S = sum_k |x_k w_k| + |bias| (in double). Any
//   order of summing K + 1 terms errs by at most (K + 1) u S (u = 2^-24) plus the products' own roundings, on
//   each side; 2^-22 = 4u also covers tensor cores that accumulate with truncation instead of rounding. Both
//   sides see the same operands: f32 x multiplies in f32 on both (16-bit weights widened exactly); where the
//   GPU converts bf16 x to an f16 weight's dtype (rounding to nearest even), the CPU is given x rounded the
//   same way. A bf16/f16 output adds 2^-8 |cpu| (half an ulp is 2^-9).
//   Products of small integers are exact everywhere, so that case must match bit for bit.
// - attention, f32: |gpu - cpu| <= 1e-4 (1 + |cpu|). Outputs are convex combinations of V rows; the two
//   backends differ only in summation order (dots of <= 256 terms, sums over <= ~1000 keys), worth ~1e-6 on
//   these N(0, 1) inputs, while one key wrongly seen or hidden moves an output by ~1e-2 or more.
// - attention, bf16 q/k/v: additionally 2^-9 max|v|: the tensor-core kernel rounds each probability to bf16
//   (relative error <= 2^-9), which moves sum_j p_j v_j / sum_j p_j by at most 2^-9 max|v|; a bf16 output
//   adds 2^-8 |cpu|.
// - NaN must match NaN, +-inf must match exactly, everywhere.
//
// Attention runs dlm's kernels: the batches carry no host offsets, so the Auto backend never picks cuDNN for
// them. The cuDNN cases (finite bf16 data, the bf16 tolerance above: cuDNN also rounds P to bf16) run on a
// backend that requires cuDNN, with the host offsets given.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "tests/gpu/shared_gpu.h"

namespace dlm {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

#define DLM_SKIP_WITHOUT_GPU()                                                \
  do {                                                                        \
    const cuda::DeviceProbe probe = cuda::probe_devices();                    \
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason; \
  } while (0)

using gpu_test::gpu;

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// ---------------------------------------------------------------------------------------------- host data

// `values` rounded to nearest even in dtype (f32: unchanged), as the values a tensor of that dtype holds.
float round_to(DType dtype, float value) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(value));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(value));
  return value;
}

std::vector<float> rounded(DType dtype, std::vector<float> values) {
  for (float& v : values) v = round_to(dtype, v);
  return values;
}

// A host tensor of dtype holding `values` rounded to it.
HostTensor host_tensor(DType dtype, Shape shape, const std::vector<float>& values) {
  HostTensor out(dtype, shape);
  EXPECT_EQ(static_cast<int64_t>(values.size()), shape.numel());
  if (dtype == DType::F32) {
    std::copy(values.begin(), values.end(), out.data<float>());
  } else {
    auto* bits = static_cast<uint16_t*>(out.tensor().data());
    for (size_t i = 0; i < values.size(); ++i) {
      bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
    }
  }
  return out;
}

// The values of a float host tensor, widened to f32.
std::vector<float> values_of(const HostTensor& t) {
  const int64_t n = t.tensor().numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (t.tensor().dtype() == DType::F32) {
    std::memcpy(out.data(), t.tensor().data(), out.size() * sizeof(float));
    return out;
  }
  const auto* bits = static_cast<const uint16_t*>(t.tensor().data());
  for (int64_t i = 0; i < n; ++i) {
    out[i] = t.tensor().dtype() == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
  }
  return out;
}

std::vector<float> uniform_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = dist(gen);
  return out;
}

std::vector<float> normal_values(int64_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = dist(gen);
  return out;
}

// ------------------------------------------------------------------------------------------- device data

struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
};

DeviceTensor to_device(const HostTensor& host) {
  DeviceTensor d;
  d.buffer = gpu().allocate(std::max<size_t>(host.tensor().nbytes(), 1));
  d.tensor = d.buffer.view(host.tensor().dtype(), host.tensor().shape());
  gpu().copy(host.tensor(), d.tensor);
  return d;
}

HostTensor to_host(const Tensor& device) {
  HostTensor host(device.dtype(), device.shape());
  gpu().copy(device, host.tensor());
  return host;
}

// A device tensor `misalign` bytes past a 256-byte boundary, in a buffer whose every other byte, and the
// tensor's own bytes before the op, hold kFill: an op that writes outside its output changes a guard byte,
// one that leaves an element unwritten leaves 0x7f7f7f7f (3.4e38 as f32 or bf16), which no check accepts.
constexpr uint8_t kFill = 0x7f;
constexpr size_t kGuardBytes = 256;

struct Guarded {
  Buffer buffer;
  Tensor tensor;
  size_t offset = 0;
  size_t bytes = 0;
};

Guarded guarded(DType dtype, Shape shape, size_t misalign = 0) {
  Guarded g;
  g.offset = kGuardBytes + misalign;
  g.bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  const size_t total = g.offset + g.bytes + kGuardBytes;
  g.buffer = gpu().allocate(total);
  HostTensor fill(DType::U8, Shape{static_cast<int64_t>(total)});
  std::memset(fill.tensor().data(), kFill, total);
  gpu().copy(fill.tensor(), g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}));
  g.tensor = g.buffer.view(dtype, shape, g.offset);
  return g;
}

// Fails the test if a byte outside the tensor changed.
void expect_guards_intact(const Guarded& g, const std::string& what) {
  const size_t total = g.offset + g.bytes + kGuardBytes;
  HostTensor back(DType::U8, Shape{static_cast<int64_t>(total)});
  gpu().copy(g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}), back.tensor());
  const auto* bytes = static_cast<const uint8_t*>(back.tensor().data());
  int64_t changed = 0;
  for (size_t i = 0; i < total; ++i) {
    if ((i < g.offset || i >= g.offset + g.bytes) && bytes[i] != kFill) ++changed;
  }
  EXPECT_EQ(changed, 0) << what << ": bytes outside the output were written";
}

// ---------------------------------------------------------------------------------------------- comparison

// got vs want element by element: NaN with NaN, inf exactly, finite within tolerance[i]. Reports the first
// few mismatches and the count.
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::vector<double>& tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bool ok;
    if (std::isnan(want[i]) || std::isnan(got[i])) {
      ok = std::isnan(want[i]) && std::isnan(got[i]);
    } else if (std::isinf(want[i]) || std::isinf(got[i])) {
      ok = got[i] == want[i];
    } else {
      ok = std::fabs(static_cast<double>(got[i]) - want[i]) <= tolerance[i];
    }
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the CPU gives " << want[i]
                    << " (tolerance " << tolerance[i] << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements differ";
}

// ================================================================================================== linear

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

// =============================================================================================== attention

struct AttentionSetup {
  std::vector<int32_t> query_lengths;  // per sequence
  std::vector<int32_t> key_lengths;
  int64_t hq = 4, hkv = 4, d = 64, dv = 64;
  Visibility visibility = Visibility::causal();
  float scale = 0.0f;
  float softcap = 0.0f;
  DType dtype = DType::F32;      // q, k, v
  DType out_dtype = DType::F32;  // out
  bool shuffle = false;          // positions in random order within each sequence
  int32_t key_position_offset = 0;
  size_t out_misalign = 0;
  bool cudnn = false;  // on gpu_test::cudnn_gpu(), with the batch's host offsets
  uint32_t seed = 1;

  std::string str() const {
    std::string s = "attention q";
    for (int32_t l : query_lengths) {
      s += ",";
      s += std::to_string(l);
    }
    s += " k";
    for (int32_t l : key_lengths) {
      s += ",";
      s += std::to_string(l);
    }
    s += " hq=";
    s += std::to_string(hq);
    s += " hkv=";
    s += std::to_string(hkv);
    s += " d=";
    s += std::to_string(d);
    s += " dv=";
    s += std::to_string(dv);
    s += " visibility=";
    s += std::to_string(static_cast<int>(visibility.kind));
    s += " block=";
    s += std::to_string(visibility.block_size);
    s += " window=";
    s += std::to_string(visibility.window);
    s += " scale=";
    s += std::to_string(scale);
    s += " softcap=";
    s += std::to_string(softcap);
    s += " ";
    s += dtype_name(dtype);
    s += "->";
    s += dtype_name(out_dtype);
    if (shuffle) s += " shuffled";
    if (out_misalign != 0) {
      s += " out misaligned by ";
      s += std::to_string(out_misalign);
    }
    if (cudnn) s += " cudnn";
    return s;
  }
};

struct AttentionData {
  std::vector<int32_t> query_offsets, key_offsets, query_positions, key_positions;
  std::vector<float> q, k, v;  // values as held by tensors of the setup's dtype
  int64_t tq = 0, tk = 0;
};

// Sequence b has keys at positions offset + 0 .. key_length - 1 and queries at the last query_length of them
// (as in cached decoding; query_length may exceed key_length for queries without keys).
AttentionData attention_data(const AttentionSetup& s) {
  AttentionData d;
  std::mt19937 gen(s.seed);
  d.query_offsets.push_back(0);
  d.key_offsets.push_back(0);
  for (size_t b = 0; b < s.query_lengths.size(); ++b) {
    const int32_t nq = s.query_lengths[b];
    const int32_t nk = s.key_lengths[b];
    std::vector<int32_t> keys(nk);
    std::iota(keys.begin(), keys.end(), s.key_position_offset);
    std::vector<int32_t> queries(nq);
    for (int32_t i = 0; i < nq; ++i) queries[i] = s.key_position_offset + std::max(0, nk - nq) + i;
    if (s.shuffle) {
      std::shuffle(keys.begin(), keys.end(), gen);
      std::shuffle(queries.begin(), queries.end(), gen);
    }
    d.key_positions.insert(d.key_positions.end(), keys.begin(), keys.end());
    d.query_positions.insert(d.query_positions.end(), queries.begin(), queries.end());
    d.query_offsets.push_back(d.query_offsets.back() + nq);
    d.key_offsets.push_back(d.key_offsets.back() + nk);
  }
  d.tq = d.query_offsets.back();
  d.tk = d.key_offsets.back();
  d.q = rounded(s.dtype, normal_values(d.tq * s.hq * s.d, s.seed + 1));
  d.k = rounded(s.dtype, normal_values(d.tk * s.hkv * s.d, s.seed + 2));
  d.v = rounded(s.dtype, normal_values(d.tk * s.hkv * s.dv, s.seed + 3));
  return d;
}

HostTensor i32_tensor(const std::vector<int32_t>& values) {
  return HostTensor::from(Shape{static_cast<int64_t>(values.size())}, values);
}

AttentionParams params_of(const AttentionSetup& s) {
  AttentionParams p;
  p.visibility = s.visibility;
  p.scale = s.scale;
  p.softcap = s.softcap;
  return p;
}

std::vector<float> cpu_attention(const AttentionSetup& s, const AttentionData& d) {
  const HostTensor q = host_tensor(DType::F32, {d.tq, s.hq, s.d}, d.q);
  const HostTensor k = host_tensor(DType::F32, {d.tk, s.hkv, s.d}, d.k);
  const HostTensor v = host_tensor(DType::F32, {d.tk, s.hkv, s.dv}, d.v);
  const HostTensor qo = i32_tensor(d.query_offsets), ko = i32_tensor(d.key_offsets);
  const HostTensor qp = i32_tensor(d.query_positions), kp = i32_tensor(d.key_positions);
  HostTensor out(DType::F32, {d.tq, s.hq, s.dv});
  cpu().attention(q, k, v, AttentionBatch{qo, ko, qp, kp, {}, {}}, params_of(s), out);
  return out.to_vector<float>();
}

std::vector<float> gpu_attention(const AttentionSetup& s, const AttentionData& d) {
  const DeviceTensor q = to_device(host_tensor(s.dtype, {d.tq, s.hq, s.d}, d.q));
  const DeviceTensor k = to_device(host_tensor(s.dtype, {d.tk, s.hkv, s.d}, d.k));
  const DeviceTensor v = to_device(host_tensor(s.dtype, {d.tk, s.hkv, s.dv}, d.v));
  const DeviceTensor qo = to_device(i32_tensor(d.query_offsets));
  const DeviceTensor ko = to_device(i32_tensor(d.key_offsets));
  const DeviceTensor qp = to_device(i32_tensor(d.query_positions));
  const DeviceTensor kp = to_device(i32_tensor(d.key_positions));
  Guarded out = guarded(s.out_dtype, {d.tq, s.hq, s.dv}, s.out_misalign);
  AttentionBatch batch{qo.tensor, ko.tensor, qp.tensor, kp.tensor, {}, {}};
  if (s.cudnn) {
    batch.host_query_offsets = d.query_offsets;
    batch.host_key_offsets = d.key_offsets;
  }
  CudaBackend& backend = s.cudnn ? gpu_test::cudnn_gpu() : gpu();
  backend.attention(q.tensor, k.tensor, v.tensor, batch, params_of(s), out.tensor);
  backend.synchronize();
  expect_guards_intact(out, s.str());
  return values_of(to_host(out.tensor));
}

std::vector<double> attention_tolerance(const AttentionSetup& s, const AttentionData& d,
                                        const std::vector<float>& want) {
  double v_max = 0.0;
  for (float x : d.v) {
    if (std::isfinite(x)) v_max = std::max(v_max, double(std::fabs(x)));
  }
  std::vector<double> tol(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const double ref = std::isfinite(want[i]) ? std::fabs(want[i]) : 0.0;
    double t = 1e-4 * (1.0 + ref);
    if (s.dtype == DType::BF16) t += std::ldexp(v_max, -9);
    if (s.out_dtype == DType::BF16) t += std::ldexp(ref, -8);
    tol[i] = t;
  }
  return tol;
}

void check_attention(const AttentionSetup& s, const AttentionData& d) {
  SCOPED_TRACE(s.str());
  const std::vector<float> want = cpu_attention(s, d);
  expect_close(gpu_attention(s, d), want, attention_tolerance(s, d, want), s.str());
}

void check_attention(const AttentionSetup& s) {
  check_attention(s, attention_data(s));
}

std::vector<Visibility> all_visibilities() {
  return {Visibility::bidirectional(),  Visibility::causal(),          Visibility::block_causal(4),
          Visibility::block_causal(64), Visibility::sliding_window(7), Visibility::sliding_window(100)};
}

TEST(CudaAttention, RaggedBatchMatchesCpuForEveryVisibilityAndGqa) {
  DLM_SKIP_WITHOUT_GPU();
  // Three sequences with fewer queries than keys (cached decoding), one key tile, one, and several.
  uint32_t seed = 100;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Visibility& visibility : all_visibilities()) {
      for (int64_t group : {1, 4, 8}) {
        for (int64_t d : {64, 128}) {
          AttentionSetup s;
          s.query_lengths = {5, 1, 70};
          s.key_lengths = {70, 3, 200};
          s.hkv = 2;
          s.hq = 2 * group;
          s.d = s.dv = d;
          s.visibility = visibility;
          s.dtype = dtype;
          s.seed = seed++;
          check_attention(s);
        }
      }
    }
  }
}

TEST(CudaAttention, Bf16OutputsAndOddHeadDimsMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // 80 and 96/64 take the tensor cores for bf16; 36 and 200 the SIMT kernel; 256 is the largest.
  struct Dims {
    int64_t d, dv;
  };
  uint32_t seed = 300;
  for (const Dims dims :
       {Dims{80, 80}, Dims{96, 64}, Dims{36, 36}, Dims{256, 256}, Dims{200, 72}, Dims{1, 3}}) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      for (DType out_dtype : {DType::F32, DType::BF16}) {
        for (const Visibility& visibility : {Visibility::causal(), Visibility::bidirectional()}) {
          AttentionSetup s;
          s.query_lengths = {9, 66, 2};
          s.key_lengths = {9, 130, 65};
          s.hq = 8;
          s.hkv = 2;
          s.d = dims.d;
          s.dv = dims.dv;
          s.visibility = visibility;
          s.dtype = dtype;
          s.out_dtype = out_dtype;
          s.seed = seed++;
          check_attention(s);
        }
      }
    }
  }
}

TEST(CudaAttention, PositionsInAnyOrderMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // Tile skipping relies on position bounds, never on order: shuffled positions give the CPU's answer.
  uint32_t seed = 400;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Visibility& visibility : all_visibilities()) {
      AttentionSetup s;
      s.query_lengths = {150, 1, 40};
      s.key_lengths = {150, 80, 300};
      s.hq = 8;
      s.hkv = 2;
      s.d = s.dv = 64;
      s.visibility = visibility;
      s.dtype = dtype;
      s.shuffle = true;
      s.seed = seed++;
      check_attention(s);
    }
  }
}

TEST(CudaAttention, PrefillSkipsHiddenTilesAndMatchesCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // Queries == keys, in order: causal and block-causal skip the tiles past each query tile; a long sliding
  // window skips the tiles before it.
  uint32_t seed = 500;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Visibility& visibility : {Visibility::causal(), Visibility::block_causal(32),
                                         Visibility::sliding_window(70), Visibility::bidirectional()}) {
      AttentionSetup s;
      s.query_lengths = {700};
      s.key_lengths = {700};
      s.hq = 4;
      s.hkv = 4;
      s.d = s.dv = 128;
      s.visibility = visibility;
      s.dtype = dtype;
      s.seed = seed++;
      check_attention(s);
    }
  }
}

TEST(CudaAttention, LargeAndOddGroupsMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // MQA with 80 query heads (split into blocks of 64 and 16 heads), a group of 7 (9 rows of 7 heads per
  // block), and a group of 64 (one row per block).
  struct Heads {
    int64_t hq, hkv;
  };
  uint32_t seed = 600;
  for (const Heads heads : {Heads{80, 1}, Heads{14, 2}, Heads{64, 1}}) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      AttentionSetup s;
      s.query_lengths = {3, 20};
      s.key_lengths = {90, 20};
      s.hq = heads.hq;
      s.hkv = heads.hkv;
      s.d = s.dv = 64;
      s.visibility = Visibility::causal();
      s.dtype = dtype;
      s.seed = seed++;
      check_attention(s);
    }
  }
}

TEST(CudaAttention, ManySequencesMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // 70 sequences (blocks find theirs across three chunks of 32), some without queries or without keys.
  AttentionSetup s;
  std::mt19937 gen(7);
  for (int b = 0; b < 70; ++b) {
    s.query_lengths.push_back(static_cast<int32_t>(gen() % 4));
    s.key_lengths.push_back(b % 11 == 0 ? 0 : static_cast<int32_t>(gen() % 100));
  }
  s.hq = 8;
  s.hkv = 2;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Visibility& visibility : {Visibility::causal(), Visibility::bidirectional()}) {
      s.dtype = dtype;
      s.visibility = visibility;
      check_attention(s);
    }
  }
}

TEST(CudaAttention, QueriesWithoutVisibleKeysGetZeroRows) {
  DLM_SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::F32, DType::BF16}) {
    // Causal: keys at positions 10.., queries at 3 and 5 see none; a sequence with no keys at all; a sliding
    // window over a gap in the key positions.
    AttentionSetup s;
    s.hq = 4;
    s.hkv = 2;
    s.dtype = dtype;
    AttentionData d;
    d.query_offsets = {0, 3, 5, 7};
    d.key_offsets = {0, 20, 20, 40};
    d.query_positions = {3, 5, 25, 0, 1, 50, 105};
    d.key_positions.resize(40);
    for (int i = 0; i < 20; ++i) d.key_positions[i] = 10 + i;        // sequence 0: 10..29
    for (int i = 0; i < 10; ++i) d.key_positions[20 + i] = i;        // sequence 2: 0..9
    for (int i = 0; i < 10; ++i) d.key_positions[30 + i] = 100 + i;  // and 100..109
    d.tq = 7;
    d.tk = 40;
    d.q = rounded(dtype, normal_values(d.tq * s.hq * s.d, 11));
    d.k = rounded(dtype, normal_values(d.tk * s.hkv * s.d, 12));
    d.v = rounded(dtype, normal_values(d.tk * s.hkv * s.dv, 13));
    for (const Visibility& visibility : {Visibility::causal(), Visibility::sliding_window(20)}) {
      s.visibility = visibility;
      const std::vector<float> got = gpu_attention(s, d);
      const std::vector<float> want = cpu_attention(s, d);
      expect_close(got, want, attention_tolerance(s, d, want), s.str());
      // Rows without a visible key: queries 0 and 1 (before all keys), 3 and 4 (no keys), and under the
      // window query 5 (position 50: keys 0..9 are >= 20 behind, 100.. ahead).
      std::vector<int> empty = {0, 1, 3, 4};
      if (visibility.kind == VisibilityKind::SlidingWindow) empty.push_back(5);
      for (int row : empty) {
        for (int64_t i = 0; i < s.hq * s.dv; ++i) {
          ASSERT_EQ(got[row * s.hq * s.dv + i], 0.0f) << s.str() << " row " << row;
          ASSERT_FALSE(std::signbit(got[row * s.hq * s.dv + i])) << s.str() << " row " << row;
        }
      }
    }
  }
}

TEST(CudaAttention, NonFiniteKeysAndValuesMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // A NaN in one key row makes exactly the queries that see it NaN (in that kv head's query heads); +inf in a
  // key gives +inf or -inf scores by the query's sign (NaN rows, or a key of weight 0, or for the query that
  // sees only that key, an all -inf row: NaN); inf/NaN in a value row reaches only the queries that see that
  // key (0 * inf = NaN where its weight is 0), never the others. Causal over shuffled positions, so some
  // queries see the bad rows and others do not, in the first key tile and in a later one.
  uint32_t seed = 700;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (int64_t d : {64, 36}) {
      for (int variant = 0; variant < 5; ++variant) {
        AttentionSetup s;
        s.query_lengths = {40, 30};
        s.key_lengths = {140, 30};
        s.hq = 8;
        s.hkv = 2;
        s.d = s.dv = d;
        s.visibility = Visibility::causal();
        s.dtype = dtype;
        s.shuffle = true;
        s.seed = seed++;
        AttentionData data = attention_data(s);
        // The keys at position 120 of sequence 0 and at position 0 of sequence 1 (which the query at position
        // 0 sees alone), kv head 1 only.
        std::vector<int64_t> bad_keys;
        for (int64_t j = 0; j < data.tk; ++j) {
          if ((j < 140 && data.key_positions[j] == 120) || (j >= 140 && data.key_positions[j] == 0)) {
            bad_keys.push_back(j);
          }
        }
        ASSERT_EQ(bad_keys.size(), 2u);
        for (int64_t key : bad_keys) {
          float* k_row = data.k.data() + (key * s.hkv + 1) * s.d;
          float* v_row = data.v.data() + (key * s.hkv + 1) * s.dv;
          switch (variant) {
            case 0:
              k_row[3] = kNaN;
              break;
            case 1:
              k_row[0] = kInf;
              break;
            case 2:
              v_row[1] = kInf;
              v_row[2] = -kInf;
              break;
            case 3:
              v_row[0] = kNaN;
              break;
            case 4:  // a score of -inf for every query that sees it, and -inf weight 0 times +inf value
              for (int64_t i = 0; i < s.d; ++i) k_row[i] = 0.0f;
              k_row[0] = kInf;
              for (int64_t r = 0; r < data.tq; ++r) data.q[(r * s.hq + 4) * s.d] = -1.0f;
              v_row[0] = kInf;
              break;
          }
        }
        check_attention(s, data);
      }
    }
  }
}

TEST(CudaAttention, ScaleAndSoftcapMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  uint32_t seed = 800;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (float softcap : {0.0f, 5.0f, 50.0f}) {
      for (float scale : {0.0f, 0.7f}) {
        AttentionSetup s;
        s.query_lengths = {17, 64};
        s.key_lengths = {100, 64};
        s.hq = 8;
        s.hkv = 2;
        s.d = s.dv = 128;
        s.visibility = Visibility::block_causal(16);
        s.scale = scale;
        s.softcap = softcap;
        s.dtype = dtype;
        s.seed = seed++;
        check_attention(s);
      }
    }
  }
}

TEST(CudaAttention, LongKeysAndMisalignedOutputMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  // Many key tiles through the double-buffered kernel; an output 4 bytes off 16-byte alignment sends bf16
  // to the SIMT kernel instead.
  uint32_t seed = 900;
  for (size_t misalign : {size_t{0}, size_t{4}}) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      AttentionSetup s;
      s.query_lengths = {32, 7};
      s.key_lengths = {1500, 777};
      s.hq = 16;
      s.hkv = 2;
      s.d = s.dv = 128;
      s.visibility = Visibility::block_causal(32);
      s.dtype = dtype;
      s.out_dtype = dtype;
      s.out_misalign = misalign;
      s.key_position_offset = 5;
      s.seed = seed++;
      check_attention(s);
    }
  }
}

TEST(CudaAttention, CudnnMatchesCpuOnBidirectionalBf16Batches) {
  DLM_SKIP_WITHOUT_GPU();
  struct Case {
    std::vector<int32_t> queries, keys;
    int64_t hq, hkv, d, dv;
    float scale;
  };
  const Case cases[] = {
      {{384}, {384}, 32, 32, 128, 128, 0.0f},                  // LLaDA-8B's full-recompute step
      {{32}, {384}, 32, 32, 128, 128, 0.0f},                   // a dual-cache block against its cached keys
      {{32, 32, 32}, {384, 300, 385}, 32, 8, 128, 128, 0.0f},  // a batch of them, GQA, 385 keys: a 512 plan
      {{5, 77, 130}, {9, 77, 300}, 8, 2, 64, 64, 0.3f},        // ragged, an explicit scale
      {{0, 17, 64}, {3, 17, 65}, 4, 4, 256, 256, 0.0f},        // a sequence without queries; the largest head
      {{40, 3}, {40, 3}, 6, 3, 64, 128, 0.0f},                 // value_dim != head_dim
      {{100}, {100}, 2, 1, 72, 72, 0.0f},                      // head_dim a multiple of 8 only
  };
  uint32_t seed = 1000;
  for (const Case& c : cases) {
    AttentionSetup s;
    s.query_lengths = c.queries;
    s.key_lengths = c.keys;
    s.hq = c.hq;
    s.hkv = c.hkv;
    s.d = c.d;
    s.dv = c.dv;
    s.scale = c.scale;
    s.visibility = Visibility::bidirectional();
    s.dtype = s.out_dtype = DType::BF16;
    s.cudnn = true;
    s.seed = seed++;
    check_attention(s);
  }
}

TEST(CudaAttention, RequiredCudnnNamesTheCallItCannotTake) {
  DLM_SKIP_WITHOUT_GPU();
  AttentionSetup s;
  s.query_lengths = {8};
  s.key_lengths = {8};
  s.dtype = s.out_dtype = DType::BF16;
  s.cudnn = true;
  s.visibility = Visibility::causal();
  try {
    gpu_attention(s, attention_data(s));
    ADD_FAILURE() << "causal attention through a backend that requires cuDNN did not throw";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("the visibility is not bidirectional"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace dlm
