// bf16 activations on the CUDA backend, through the op front-ends: embedding into bf16, the norms, RoPE and
// the element-wise ops, out of place and in place, against the CPU backend (the reference, which computes in
// f32 only) given the same values widened to f32. (linear and attention with bf16 operands are covered in
// cuda_linear_test.cpp and cuda_attention_test.cpp.) Without a device every test skips.
//
// Tolerance: each kernel computes its f32 result from the widened inputs exactly as its f32 form does and
// rounds it once to bf16, and the f32 forms agree with the CPU within the bounds of cuda_ops_test.cpp and
// cuda_norm_rope_test.cpp (an f32 ulp or two; add and the copies exactly). So a bf16 result is the CPU's f32
// result rounded to nearest even: exactly where the f32 forms agree exactly, and otherwise that or its bf16
// neighbour (the two f32 values may straddle a rounding boundary), i.e. within one bf16 ulp (<= 2^-7 |cpu|)
// plus the f32 forms' absolute bound where they have one (rope and layer_norm: 1e-6, which matters only for
// results near 0). NaN must match NaN, an infinity the same infinity. Guard bytes around every output stay
// untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "tests/gpu/shared_gpu.h"
#include "tests/gpu/tensor_placement.h"

namespace dlm {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

using gpu_test::for_each_alignment;
using gpu_test::gpu;
using gpu_test::guard_bytes;

CpuBackend& cpu() {
  static CpuBackend backend(2);
  return backend;
}

class CudaBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    const cuda::DeviceProbe probe = cuda::probe_devices();
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  }
};

// ------------------------------------------------------------------------------------------------ data

// Uniform in [-scale, scale) rounded to bf16, with NaN, +inf and -inf at fixed places when there is room.
std::vector<float> bf16_values(int64_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(dist(gen)));
  if (n >= 64) {
    v[7] = kNaN;
    v[31] = kInf;
    v[50] = -kInf;
  }
  return v;
}

HostTensor host(DType dtype, Shape shape, const std::vector<float>& values) {
  if (dtype == DType::F32) return HostTensor::from(shape, values);
  HostTensor out(dtype, shape);
  auto* bits = static_cast<uint16_t*>(out.tensor().data());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return out;
}

std::vector<float> widened_bf16(const HostTensor& t) {
  const auto* bits = static_cast<const uint16_t*>(t.tensor().data());
  std::vector<float> out(static_cast<size_t>(t.tensor().numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(bits[i]);
  return out;
}

// --------------------------------------------------------------------------------- guarded device tensors

constexpr uint8_t kGuard = 0xa5;

struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
  size_t guard = 0;  // bytes before and after the tensor (tensor_placement.h)
  operator const Tensor&() const { return tensor; }
};

// A device tensor between guard bands; its own bytes start as the guard pattern too (unwritten elements
// show).
DeviceTensor guarded(DType dtype, Shape shape) {
  DeviceTensor d;
  d.guard = guard_bytes();
  const size_t total = static_cast<size_t>(shape.numel()) * dtype_size(dtype) + 2 * d.guard;
  d.buffer = gpu().allocate(total);
  HostTensor fill(DType::U8, Shape{static_cast<int64_t>(total)});
  std::memset(fill.tensor().data(), kGuard, total);
  gpu().copy(fill, d.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}));
  d.tensor = d.buffer.view(dtype, shape, d.guard);
  return d;
}

DeviceTensor upload(const HostTensor& h) {
  DeviceTensor d = guarded(h.tensor().dtype(), h.tensor().shape());
  gpu().copy(h, d.tensor);
  return d;
}

HostTensor download(const Tensor& t) {
  HostTensor h(t.dtype(), t.shape());
  gpu().copy(t, h);
  return h;
}

void expect_guards_intact(const DeviceTensor& d) {
  const auto total = static_cast<int64_t>(d.buffer.bytes());
  const HostTensor bytes = download(d.buffer.view(DType::U8, Shape{total}));
  const auto* b = static_cast<const uint8_t*>(bytes.tensor().data());
  const auto payload = static_cast<int64_t>(d.tensor.nbytes());
  int64_t bad = 0;
  for (int64_t i = 0; i < total; ++i) {
    const bool guard = i < static_cast<int64_t>(d.guard) || i >= static_cast<int64_t>(d.guard) + payload;
    if (guard && b[i] != kGuard) ++bad;
  }
  EXPECT_EQ(bad, 0) << bad << " guard bytes around " << d.tensor.describe() << " overwritten";
}

// ---------------------------------------------------------------------------------------------- checks

// How the f32 forms of a kernel agree with the CPU (cuda_ops_test.cpp, cuda_norm_rope_test.cpp): exactly, or
// within an ulp or two plus an absolute bound.
struct F32Agreement {
  bool exact = false;
  double abs = 0.0;
};
constexpr F32Agreement kExact{true, 0.0};
constexpr F32Agreement kUlps{false, 0.0};
constexpr F32Agreement kUlpsOrAbs1e6{false, 1e-6};

// A bf16 result against the CPU's f32 one: the f32 value rounded (exact), or within one bf16 ulp of it.
void expect_rounded(const HostTensor& got_bf16, const HostTensor& want_f32, F32Agreement agreement,
                    const std::string& what) {
  const std::vector<float> got = widened_bf16(got_bf16);
  const std::vector<float> want = want_f32.to_vector<float>();
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const float w = want[i];
    const float rounded = bf16_to_f32(f32_to_bf16(w));
    bool ok;
    if (std::isnan(rounded)) {
      ok = std::isnan(got[i]);
    } else if (agreement.exact || std::isinf(rounded)) {
      ok = std::memcmp(&got[i], &rounded, sizeof(float)) == 0 || (got[i] == 0.0f && rounded == 0.0f);
    } else {
      const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::abs(w), 1e-30f)) - 7);
      ok = std::isfinite(got[i]) && std::abs(static_cast<double>(got[i]) - w) <= ulp + agreement.abs;
    }
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the CPU's f32 value " << w
                    << " rounds to " << rounded;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size() << " elements off";
}

// ----------------------------------------------------------------------------------------------- tests

TEST_F(CudaBf16, EmbeddingRoundsEachTableDtypeOnce) {
  const int64_t vocab = 37, width = 130, rows = 300;
  std::mt19937 gen(3);
  std::vector<int32_t> ids(rows);
  for (int32_t& id : ids) id = static_cast<int32_t>(gen() % vocab);
  const HostTensor host_ids = HostTensor::from(Shape{rows}, ids);
  for (DType table_dtype : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<float> values(static_cast<size_t>(vocab * width));
    std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
    for (float& v : values) v = dist(gen);
    const HostTensor table = host(table_dtype, {vocab, width}, values);
    HostTensor want(DType::F32, {rows, width});
    ops::embedding(cpu(), table, host_ids, want);
    DeviceTensor out = guarded(DType::BF16, {rows, width});
    ops::embedding(gpu(), upload(table), upload(host_ids), out);
    expect_rounded(download(out), want, kExact,
                   std::string("embedding of a ") + std::string(dtype_name(table_dtype)) + " table");
    expect_guards_intact(out);
  }
}

TEST_F(CudaBf16, NormsRoundTheF32ResultInAndOutOfPlace) {
  for_each_alignment([&] {
    const int64_t rows = 67, width = 320;
    const HostTensor x = host(DType::BF16, {rows, width}, bf16_values(rows * width, 5));
    const HostTensor x_wide = HostTensor::from(Shape{rows, width}, widened_bf16(x));
    for (DType weight_dtype : {DType::F32, DType::BF16, DType::F16}) {
      const HostTensor weight = host(weight_dtype, {width}, bf16_values(width, 6, 1.0f));
      const HostTensor bias = host(weight_dtype, {width}, bf16_values(width, 7, 1.0f));
      const std::string what = std::string(dtype_name(weight_dtype)) + " weight";
      for (NormWeight mode : {NormWeight::Plain, NormWeight::OnePlus}) {
        HostTensor want(DType::F32, {rows, width});
        ops::rms_norm(cpu(), x_wide, weight, 1e-6f, mode, want);
        DeviceTensor out = guarded(DType::BF16, {rows, width});
        ops::rms_norm(gpu(), upload(x), upload(weight), 1e-6f, mode, out);
        expect_rounded(download(out), want, kUlps, "rms_norm, " + what);
        expect_guards_intact(out);
        DeviceTensor in_place = upload(x);
        ops::rms_norm(gpu(), in_place, upload(weight), 1e-6f, mode, in_place);
        expect_rounded(download(in_place), want, kUlps, "rms_norm in place, " + what);
      }
      HostTensor want(DType::F32, {rows, width});
      ops::layer_norm(cpu(), x_wide, weight, bias.tensor(), 1e-5f, want);
      DeviceTensor out = guarded(DType::BF16, {rows, width});
      const DeviceTensor device_bias = upload(bias);
      ops::layer_norm(gpu(), upload(x), upload(weight), device_bias.tensor, 1e-5f, out);
      expect_rounded(download(out), want, kUlpsOrAbs1e6, "layer_norm, " + what);
      expect_guards_intact(out);
    }
  });
}

TEST_F(CudaBf16, RopeRoundsTheRotationForBothLayouts) {
  const int64_t tokens = 19, heads = 5, head_dim = 64;
  const HostTensor x =
      host(DType::BF16, {tokens, heads, head_dim}, bf16_values(tokens * heads * head_dim, 9, 1.0f));
  const HostTensor x_wide = HostTensor::from(Shape{tokens, heads, head_dim}, widened_bf16(x));
  std::vector<int32_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>(7 * t + 3);
  const HostTensor host_positions = HostTensor::from(Shape{tokens}, positions);
  for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
    for (int64_t rotary_dim : {head_dim, head_dim / 2}) {  // the rest pass through
      const RopeParams params{layout, rotary_dim, 1.25f};
      const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
      HostTensor want(DType::F32, {tokens, heads, head_dim});
      ops::rope(cpu(), x_wide, host_positions, inv_freq, params, want);
      const DeviceTensor device_positions = upload(host_positions);
      const DeviceTensor device_inv_freq = upload(inv_freq);
      DeviceTensor out = guarded(DType::BF16, {tokens, heads, head_dim});
      ops::rope(gpu(), upload(x), device_positions, device_inv_freq, params, out);
      const std::string what = "rope, rotary_dim " + std::to_string(rotary_dim);
      expect_rounded(download(out), want, kUlpsOrAbs1e6, what);
      expect_guards_intact(out);
      DeviceTensor in_place = upload(x);
      ops::rope(gpu(), in_place, device_positions, device_inv_freq, params, in_place);
      expect_rounded(download(in_place), want, kUlpsOrAbs1e6, what + " in place");
    }
  }
}

// rope_qkv on bf16: q and k as rope above, v the same bits, for both layouts, GQA, a partial rotary dim, and
// 8- and 16-byte aligned tensors (the kernel's 16-byte path takes eight half-split frequencies at a time).
TEST_F(CudaBf16, RopeQkvRotatesQAndKAndCopiesV) {
  const int64_t tokens = 23, q_heads = 4, kv_heads = 2, head_dim = 64;
  const int64_t width = (q_heads + 2 * kv_heads) * head_dim;
  const HostTensor qkv = host(DType::BF16, {tokens, width}, bf16_values(tokens * width, 13, 1.0f));
  const HostTensor qkv_wide = HostTensor::from(Shape{tokens, width}, widened_bf16(qkv));
  std::vector<int32_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>(11 * t + 1);
  const HostTensor host_positions = HostTensor::from(Shape{tokens}, positions);
  for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
    for (int64_t rotary_dim : {head_dim, head_dim / 2}) {
      const RopeParams params{layout, rotary_dim, 1.25f};
      const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
      HostTensor q(DType::F32, {tokens, q_heads, head_dim});
      HostTensor k(DType::F32, {tokens, kv_heads, head_dim});
      HostTensor v(DType::F32, {tokens, kv_heads, head_dim});
      ops::rope_qkv(cpu(), qkv_wide, host_positions, inv_freq, params, q, k, v);
      const std::string what = std::string(layout == RopeLayout::HalfSplit ? "half-split" : "interleaved") +
                               ", rotary_dim " + std::to_string(rotary_dim);
      for_each_alignment([&] {
        const DeviceTensor dq = guarded(DType::BF16, {tokens, q_heads, head_dim});
        const DeviceTensor dk = guarded(DType::BF16, {tokens, kv_heads, head_dim});
        const DeviceTensor dv = guarded(DType::BF16, {tokens, kv_heads, head_dim});
        ops::rope_qkv(gpu(), upload(qkv), upload(host_positions), upload(inv_freq), params, dq, dk, dv);
        expect_rounded(download(dq), q, kUlpsOrAbs1e6, "rope_qkv q, " + what);
        expect_rounded(download(dk), k, kUlpsOrAbs1e6, "rope_qkv k, " + what);
        expect_rounded(download(dv), v, kExact, "rope_qkv v, " + what);
        for (const DeviceTensor* d : {&dq, &dk, &dv}) expect_guards_intact(*d);
      });
    }
  }
}

TEST_F(CudaBf16, AddIsTheRoundedF32SumForBothShapesAndInPlace) {
  const int64_t rows = 41, width = 96;
  const HostTensor a = host(DType::BF16, {rows, width}, bf16_values(rows * width, 11));
  const HostTensor b = host(DType::BF16, {rows, width}, bf16_values(rows * width, 12));
  const HostTensor row = host(DType::BF16, {width}, bf16_values(width, 13));
  const HostTensor a_wide = HostTensor::from(Shape{rows, width}, widened_bf16(a));
  for (const HostTensor* other : {&b, &row}) {
    const HostTensor other_wide = HostTensor::from(other->tensor().shape(), widened_bf16(*other));
    HostTensor want(DType::F32, {rows, width});
    ops::add(cpu(), a_wide, other_wide, want);
    const std::string what = other == &b ? "add" : "add of a row";
    DeviceTensor out = guarded(DType::BF16, {rows, width});
    const DeviceTensor device_other = upload(*other);
    ops::add(gpu(), upload(a), device_other, out);
    expect_rounded(download(out), want, kExact, what);
    expect_guards_intact(out);
    DeviceTensor in_place = upload(a);
    ops::add(gpu(), in_place, device_other, in_place);
    expect_rounded(download(in_place), want, kExact, what + " in place");
  }
}

TEST_F(CudaBf16, ActivationsRoundTheF32ResultPlainAndGated) {
  for_each_alignment([&] {
    const int64_t n = 5003;
    const HostTensor x = host(DType::BF16, {n}, bf16_values(n, 15, 12.0f));
    const HostTensor up = host(DType::BF16, {n}, bf16_values(n, 16, 2.0f));
    const HostTensor x_wide = HostTensor::from(Shape{n}, widened_bf16(x));
    const HostTensor up_wide = HostTensor::from(Shape{n}, widened_bf16(up));
    auto check = [&](const std::string& what, auto cpu_op, auto gpu_op) {
      HostTensor want(DType::F32, {n});
      cpu_op(want);
      DeviceTensor out = guarded(DType::BF16, {n});
      gpu_op(out);
      expect_rounded(download(out), want, kUlps, what);
      expect_guards_intact(out);
    };
    check(
        "silu", [&](const Tensor& out) { ops::silu(cpu(), x_wide, out); },
        [&](const Tensor& out) { ops::silu(gpu(), upload(x), out); });
    for (GeluApproximation approximation : {GeluApproximation::None, GeluApproximation::Tanh}) {
      check(
          "gelu", [&](const Tensor& out) { ops::gelu(cpu(), x_wide, approximation, out); },
          [&](const Tensor& out) { ops::gelu(gpu(), upload(x), approximation, out); });
      check(
          "geglu", [&](const Tensor& out) { ops::geglu(cpu(), x_wide, up_wide, approximation, out); },
          [&](const Tensor& out) { ops::geglu(gpu(), upload(x), upload(up), approximation, out); });
    }
    check(
        "swiglu", [&](const Tensor& out) { ops::swiglu(cpu(), x_wide, up_wide, out); },
        [&](const Tensor& out) { ops::swiglu(gpu(), upload(x), upload(up), out); });
    // In place, into the gate.
    HostTensor want(DType::F32, {n});
    ops::swiglu(cpu(), x_wide, up_wide, want);
    DeviceTensor gate = upload(x);
    ops::swiglu(gpu(), gate, upload(up), gate);
    expect_rounded(download(gate), want, kUlps, "swiglu into the gate");
  });
}

// bf16 SiLU runs in f32 where that rounds as the double evaluation does (elementwise.cu): its bits must be
// those of the f32 kernel's result (the double evaluation, checked against the CPU above) rounded to bf16,
// for a million inputs, plain and gated.
TEST_F(CudaBf16, SiluRoundsAsTheDoubleEvaluation) {
  const int64_t n = int64_t{1} << 20;
  const HostTensor x = host(DType::BF16, {n}, bf16_values(n, 21, 20.0f));
  const HostTensor up = host(DType::BF16, {n}, bf16_values(n, 22, 4.0f));
  const HostTensor x_wide = HostTensor::from(Shape{n}, widened_bf16(x));
  const HostTensor up_wide = HostTensor::from(Shape{n}, widened_bf16(up));
  auto expect_double_rounding = [&](const std::string& what, auto op) {
    DeviceTensor wide = guarded(DType::F32, {n});
    op(upload(x_wide), upload(up_wide), wide);
    const std::vector<float> want = download(wide).to_vector<float>();
    DeviceTensor narrow = guarded(DType::BF16, {n});
    op(upload(x), upload(up), narrow);
    const HostTensor got = download(narrow);
    const auto* bits = static_cast<const uint16_t*>(got.tensor().data());
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) differ += bits[i] != f32_to_bf16(want[static_cast<size_t>(i)]);
    EXPECT_EQ(differ, 0) << what << ": elements whose bits differ from the double evaluation rounded";
  };
  expect_double_rounding(
      "silu", [](const Tensor& in, const Tensor&, const Tensor& out) { ops::silu(gpu(), in, out); });
  expect_double_rounding("swiglu", [](const Tensor& in, const Tensor& gate_up, const Tensor& out) {
    ops::swiglu(gpu(), in, gate_up, out);
  });
}

TEST_F(CudaBf16, GatedActivationsTakeTheHalvesOfOneMatrix) {
  for_each_alignment([&] {
    // A fused gate/up projection's output [rows, 2 * width]: gate and up as its column blocks, as the
    // transformer passes them; against the CPU on the same halves.
    const int64_t rows = 23, width = 203;
    const HostTensor both = host(DType::BF16, {rows, 2 * width}, bf16_values(rows * 2 * width, 17, 6.0f));
    const HostTensor both_wide = HostTensor::from(Shape{rows, 2 * width}, widened_bf16(both));
    const DeviceTensor device_both = upload(both);
    const Tensor gate = device_both.tensor.slice(1, 0, width);
    const Tensor up = device_both.tensor.slice(1, width, 2 * width);
    for (GeluApproximation approximation : {GeluApproximation::None, GeluApproximation::Tanh}) {
      HostTensor want(DType::F32, {rows, width});
      ops::geglu(cpu(), both_wide.tensor().slice(1, 0, width), both_wide.tensor().slice(1, width, 2 * width),
                 approximation, want);
      DeviceTensor out = guarded(DType::BF16, {rows, width});
      ops::geglu(gpu(), gate, up, approximation, out);
      expect_rounded(download(out), want, kUlps, "geglu of the halves");
      expect_guards_intact(out);
    }
    HostTensor want(DType::F32, {rows, width});
    ops::swiglu(cpu(), both_wide.tensor().slice(1, 0, width), both_wide.tensor().slice(1, width, 2 * width),
                want);
    DeviceTensor out = guarded(DType::BF16, {rows, width});
    ops::swiglu(gpu(), gate, up, out);
    expect_rounded(download(out), want, kUlps, "swiglu of the halves");
    expect_guards_intact(out);
  });
}

TEST_F(CudaBf16, MixedActivationDtypesAreRefused) {
  const DeviceTensor a = upload(host(DType::BF16, {4}, {1, 2, 3, 4}));
  const DeviceTensor b = upload(host(DType::F32, {4}, {1, 2, 3, 4}));
  EXPECT_THROW(ops::add(gpu(), a, b, a), Error);
  EXPECT_THROW(ops::silu(gpu(), a, b), Error);
}

}  // namespace
}  // namespace dlm
