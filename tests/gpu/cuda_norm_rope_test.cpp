// The CUDA backend's norms, rotary embeddings and element-wise ops (add, activations, gated units) against
// the CPU backend: odd shapes, every dtype an op accepts, NaN/Inf in the same places, in-place forms, strided
// inputs and guard bytes (op_checks.h states the tolerances' reasoning). Without a device every test skips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "tests/gpu/op_checks.h"

namespace dlm {
namespace {

using namespace op_test;

// ============================================================================================= norms

struct NormCase {
  int64_t rows, width;
};

std::string norm_case_name(const ::testing::TestParamInfo<NormCase>& info) {
  return shape_name({info.param.rows, info.param.width});
}

// Rows of uniform values in [-3, 3); when there are enough rows, a few special ones: a NaN, +inf, -inf, all
// zeros (only eps keeps the rms nonzero), and values near 1e30 (their squares need the double sum).
std::vector<float> norm_input(int64_t rows, int64_t width, uint32_t seed) {
  std::vector<float> v = uniform(rows * width, seed, -3.0f, 3.0f);
  if (rows >= 7) {
    v[0 * width + width / 2] = kNaN;
    v[1 * width] = kInf;
    v[2 * width + width - 1] = -kInf;
    std::fill(v.begin() + 3 * width, v.begin() + 4 * width, 0.0f);
    for (int64_t i = 0; i < width; ++i) v[4 * width + i] *= 1e30f;
  }
  return v;
}

class CudaRmsNorm : public GpuParamTest<NormCase> {};

// Both backends sum the squares in double (in different orders, ~1e-16 relative apart), round 1/rms to f32
// once, and apply the same two f32 multiplies (and the same f32 1 + w): results agree to 2 ulps
// (rel 2.4e-7), exactly in practice.
TEST_P(CudaRmsNorm, MatchesTheCpuForEveryModeAndWeightDtypeInPlaceToo) {
  const auto [rows, width] = GetParam();
  for_each_alignment([&] {
    const Tolerance tol{1e-37, 2.4e-7};
    const std::vector<float> xv = norm_input(rows, width, 31);
    const std::vector<float> wv = uniform(width, 32, -2.0f, 2.0f);
    HostTensor x = f32({rows, width}, xv);
    for (NormWeight mode : {NormWeight::Plain, NormWeight::OnePlus}) {
      for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
        SCOPED_TRACE(std::string(mode == NormWeight::Plain ? "plain " : "one-plus ") +
                     std::string(dtype_name(dtype)));
        HostTensor w = host_of(dtype, {width}, wv);
        HostTensor want(DType::F32, Shape{rows, width});
        ops::rms_norm(cpu(), x, w, 1e-6f, mode, want);
        Guarded dx = upload(x);
        Guarded dw = upload(w);
        Guarded out = output(DType::F32, Shape{rows, width});
        ops::rms_norm(gpu(), dx, dw, 1e-6f, mode, out);
        expect_close(download(out), want, tol);
        expect_guards_intact(out);
        ops::rms_norm(gpu(), dx, dw, 1e-6f, mode, dx);  // in place
        expect_close(download(dx), want, tol);
        expect_guards_intact(dx);
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRmsNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{7, 33},
                                           NormCase{37, 1029}, NormCase{9, 4099}, NormCase{2, 8192},
                                           NormCase{(1 << 20) + 3, 2}),
                         norm_case_name);

class CudaAddRmsNorm : public GpuParamTest<NormCase> {};

// The fused op is add then rms_norm: bit for bit the two ops on the GPU (the sum is rounded and stored, then
// normed from the stored values), for f32 and bf16 rows, with separate outputs and with both aliasings a
// transformer layer uses (the sum into x and the norm into the residual, or the other way round); and, in
// f32, within CudaRmsNorm's tolerance of the CPU's add then rms_norm.
TEST_P(CudaAddRmsNorm, IsAddThenRmsNormBitForBitWhateverTheOutputsAlias) {
  const auto [rows, width] = GetParam();
  for_each_alignment([&] {
    const Shape shape{rows, width};
    const std::vector<float> xv = norm_input(rows, width, 51);
    const std::vector<float> rv = uniform(rows * width, 52, -3.0f, 3.0f);
    const HostTensor w = host_of(DType::BF16, {width}, uniform(width, 53, -2.0f, 2.0f));
    enum class Outputs { Separate, SumIntoXNormIntoResidual, SumIntoResidualNormIntoX };
    for (DType dtype : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)));
      const HostTensor x = host_of(dtype, shape, xv);
      const HostTensor r = host_of(dtype, shape, rv);
      Guarded dw = upload(w);
      Guarded sum_ref = output(dtype, shape);
      Guarded norm_ref = output(dtype, shape);
      ops::add(gpu(), upload(x), upload(r), sum_ref);
      ops::rms_norm(gpu(), sum_ref, dw, 1e-6f, NormWeight::Plain, norm_ref);
      const HostTensor want_sum = download(sum_ref);
      const HostTensor want_norm = download(norm_ref);
      if (dtype == DType::F32) {
        HostTensor cpu_sum(DType::F32, shape);
        HostTensor cpu_norm(DType::F32, shape);
        ops::add(cpu(), x, r, cpu_sum);
        ops::rms_norm(cpu(), cpu_sum, w, 1e-6f, NormWeight::Plain, cpu_norm);
        expect_close(want_norm, cpu_norm, Tolerance{1e-37, 2.4e-7});
      }
      for (Outputs outputs :
           {Outputs::Separate, Outputs::SumIntoXNormIntoResidual, Outputs::SumIntoResidualNormIntoX}) {
        SCOPED_TRACE(static_cast<int>(outputs));
        Guarded dx = upload(x);
        Guarded dr = upload(r);
        Guarded sum = output(dtype, shape);
        Guarded norm = output(dtype, shape);
        const Guarded& sum_out = outputs == Outputs::Separate                   ? sum
                                 : outputs == Outputs::SumIntoXNormIntoResidual ? dx
                                                                                : dr;
        const Guarded& norm_out = outputs == Outputs::Separate                   ? norm
                                  : outputs == Outputs::SumIntoXNormIntoResidual ? dr
                                                                                 : dx;
        ops::add_rms_norm(gpu(), dx, dr, dw, 1e-6f, NormWeight::Plain, sum_out, norm_out);
        expect_same_bits(download(sum_out), want_sum);
        expect_same_bits(download(norm_out), want_norm);
        expect_guards_intact(sum_out);
        expect_guards_intact(norm_out);
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAddRmsNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 33}, NormCase{37, 1029},
                                           NormCase{9, 4099}, NormCase{3, 4096}),
                         norm_case_name);

class CudaLayerNorm : public GpuParamTest<NormCase> {};

// Mean, variance and the centred value are double on both sides (sums in different orders), rounded to f32
// once; the f32 multiply by w and add of b are the same operations. With |x_hat| <= ~1.8 for these rows and
// |w|, |b| <= 1, one ulp of the normalized value and one of the sum stay below 2.4e-7 each: abs 1e-6.
TEST_P(CudaLayerNorm, MatchesTheCpuWithAndWithoutBiasInPlaceToo) {
  const auto [rows, width] = GetParam();
  const Tolerance tol{1e-6, 2.4e-7};
  std::vector<float> xv = norm_input(rows, width, 41);
  if (rows >= 7) {  // a row far from zero: 4096 plus a few f32 ulps there
    for (int64_t i = 0; i < width; ++i) xv[5 * width + i] = 4096.0f + static_cast<float>(i % 4) * 0x1p-11f;
  }
  const std::vector<float> wv = uniform(width, 42, -1.0f, 1.0f);
  const std::vector<float> bv = uniform(width, 43, -1.0f, 1.0f);
  HostTensor x = f32({rows, width}, xv);
  struct Dtypes {
    DType weight;
    std::optional<DType> bias;
  };
  for (const Dtypes& d :
       {Dtypes{DType::F32, std::nullopt}, Dtypes{DType::F32, DType::F32}, Dtypes{DType::BF16, DType::BF16},
        Dtypes{DType::F16, DType::F16}, Dtypes{DType::BF16, std::nullopt}, Dtypes{DType::F32, DType::F16}}) {
    SCOPED_TRACE("weight " + std::string(dtype_name(d.weight)) + ", bias " +
                 (d.bias ? std::string(dtype_name(*d.bias)) : std::string("none")));
    HostTensor w = host_of(d.weight, {width}, wv);
    std::optional<HostTensor> b;
    if (d.bias) b.emplace(host_of(*d.bias, {width}, bv));
    HostTensor want(DType::F32, Shape{rows, width});
    ops::layer_norm(cpu(), x, w, b ? std::optional<Tensor>(b->tensor()) : std::nullopt, 1e-5f, want);
    Guarded dx = upload(x);
    Guarded dw = upload(w);
    std::optional<Guarded> db;
    if (b) db.emplace(upload(*b));
    const std::optional<Tensor> device_bias = db ? std::optional<Tensor>(db->tensor) : std::nullopt;
    Guarded out = output(DType::F32, Shape{rows, width});
    ops::layer_norm(gpu(), dx, dw, device_bias, 1e-5f, out);
    expect_close(download(out), want, tol);
    expect_guards_intact(out);
    ops::layer_norm(gpu(), dx, dw, device_bias, 1e-5f, dx);  // in place
    expect_close(download(dx), want, tol);
    expect_guards_intact(dx);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLayerNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{7, 33},
                                           NormCase{37, 1029}, NormCase{9, 4099}, NormCase{2, 8192}),
                         norm_case_name);

// ============================================================================================== rope

struct RopeCase {
  int64_t tokens, heads, head_dim, rotary_dim;
};

class CudaRope : public GpuParamTest<RopeCase> {};

// cos and sin come from the same f32 angle, taken in double (CUDA's and glibc's are both within ~1 double
// ulp) and rounded to f32 once, so the tables agree except for a value within ~1e-16 of an f32 rounding
// boundary; the rotation is the same four f32 operations. Inputs in [-1, 1) and factors <= 1.25 keep |out|
// <= 2.5: one ulp of a table entry (1.2e-7) times |a| + |b| <= 2, plus a flipped rounding of the result
// (2.4e-7), stays below abs 1e-6. Pass-through features are copies (covered by the same bound).
TEST_P(CudaRope, MatchesTheCpuForBothLayoutsAndFactorsInPlaceToo) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  const Tolerance tol{1e-6, 0.0};
  std::vector<float> xv = uniform(tokens * heads * head_dim, 51, -1.0f, 1.0f);
  sprinkle(xv, 52, {kNaN, kInf, -0.0f});
  std::mt19937 gen(53);
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (auto& p : pos) p = static_cast<int32_t>(gen() % 131072);
  pos.front() = 0;
  if (tokens > 1) pos.back() = 1000000;  // a large position: the f32 angle rounding matters
  HostTensor x = f32({tokens, heads, head_dim}, xv);
  HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  for (double theta : {10000.0, 1000000.0}) {
    HostTensor inv_freq = ops::default_rope_inv_freq(theta, rotary_dim);
    for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
      for (float factor : {1.0f, 1.25f}) {
        SCOPED_TRACE("theta " + std::to_string(theta) +
                     (layout == RopeLayout::HalfSplit ? " half-split" : " interleaved") + " factor " +
                     std::to_string(factor));
        const RopeParams params{layout, rotary_dim, factor};
        HostTensor want(DType::F32, Shape{tokens, heads, head_dim});
        ops::rope(cpu(), x, positions, inv_freq, params, want);
        Guarded dx = upload(x);
        Guarded dpos = upload(positions);
        Guarded dfreq = upload(inv_freq);
        Guarded out = output(DType::F32, Shape{tokens, heads, head_dim});
        ops::rope(gpu(), dx, dpos, dfreq, params, out);
        expect_close(download(out), want, tol);
        expect_guards_intact(out);
        ops::rope(gpu(), dx, dpos, dfreq, params, dx);  // in place
        expect_close(download(dx), want, tol);
        expect_guards_intact(dx);
      }
    }
  }
}

// x as a column block of a wider matrix (a fused q/k/v projection's output: tokens further apart than their
// heads), into a contiguous out: the CPU's rotation of the same block, as above.
TEST_P(CudaRope, TakesTokensFurtherApartThanTheirHeads) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  if (head_dim > 1024) GTEST_SKIP() << "covered by the smaller heads";
  const int64_t width = (3 * heads + 1) * head_dim;  // the block starts one head in
  HostTensor wide = f32({tokens, width}, uniform(tokens * width, 54, -1.0f, 1.0f));
  const auto block = [&](const Tensor& t) {
    const Tensor columns = t.slice(1, head_dim, (heads + 1) * head_dim);
    return Tensor(columns.data(), DType::F32, Shape{tokens, heads, head_dim}, Shape{width, head_dim, 1},
                  columns.device());
  };
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(3 * t + 1);
  HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
  const RopeParams params{RopeLayout::HalfSplit, rotary_dim, 1.0f};
  HostTensor want(DType::F32, Shape{tokens, heads, head_dim});
  ops::rope(cpu(), block(wide), positions, inv_freq, params, want);
  Guarded device_wide = upload(wide);
  Guarded out = output(DType::F32, Shape{tokens, heads, head_dim});
  ops::rope(gpu(), block(device_wide), upload(positions), upload(inv_freq), params, out);
  expect_close(download(out), want, Tolerance{1e-6, 0.0});
  expect_guards_intact(out);
}

// rope_qkv: q and k rotated out of a fused product's output and v copied, against the CPU's composition of
// rope, rope and copy (Backend::rope_qkv), with half as many kv heads (GQA) and a partial rotary dim: q and
// k as above, v bit for bit, each output's guards intact. The product's output is contiguous, and a column
// block of a wider matrix; tensors 8- and 16-byte aligned (the kernel's 16-byte path).
TEST_P(CudaRope, FusedQkvHeadsMatchTheCpu) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  if (head_dim > 1024) GTEST_SKIP() << "covered by the smaller heads";
  const int64_t q_heads = 2 * heads, kv_heads = heads;
  const int64_t width = (q_heads + 2 * kv_heads) * head_dim;
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(5 * t + 2);
  const HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
  for (const int64_t padding : {int64_t{0}, head_dim}) {
    const int64_t stride = width + padding;
    std::vector<float> values = uniform(tokens * stride, 55, -1.0f, 1.0f);
    sprinkle(values, 56, {kNaN, kInf, -0.0f});
    const HostTensor wide = f32({tokens, stride}, values);
    const auto columns = [&](const Tensor& t) { return t.slice(1, padding, padding + width); };
    for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
      SCOPED_TRACE(std::string(layout == RopeLayout::HalfSplit ? "half-split" : "interleaved") +
                   (padding > 0 ? ", a column block" : ", contiguous"));
      const RopeParams params{layout, rotary_dim, 1.25f};
      HostTensor q(DType::F32, Shape{tokens, q_heads, head_dim});
      HostTensor k(DType::F32, Shape{tokens, kv_heads, head_dim});
      HostTensor v(DType::F32, Shape{tokens, kv_heads, head_dim});
      ops::rope_qkv(cpu(), columns(wide), positions, inv_freq, params, q, k, v);
      for_each_alignment([&] {
        const Guarded device_wide = upload(wide);
        const Guarded gq = output(DType::F32, q.tensor().shape());
        const Guarded gk = output(DType::F32, k.tensor().shape());
        const Guarded gv = output(DType::F32, v.tensor().shape());
        ops::rope_qkv(gpu(), columns(device_wide), upload(positions), upload(inv_freq), params, gq, gk, gv);
        expect_close(download(gq), q, Tolerance{1e-6, 0.0});
        expect_close(download(gk), k, Tolerance{1e-6, 0.0});
        expect_same_bits(download(gv), v);
        for (const Guarded* g : {&gq, &gk, &gv}) expect_guards_intact(*g);
      });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaRope,
    ::testing::Values(RopeCase{1, 1, 2, 2}, RopeCase{7, 3, 6, 4}, RopeCase{37, 5, 24, 16},
                      RopeCase{33, 8, 64, 64}, RopeCase{5, 2, 128, 96}, RopeCase{1000, 1, 32, 32},
                      // rotary_dim / 2 = 4608 frequencies: more than one shared table
                      RopeCase{3, 2, 9218, 9216}),
    [](const auto& info) {
      return shape_name({info.param.tokens, info.param.heads, info.param.head_dim, info.param.rotary_dim});
    });

// ======================================================================================= element-wise

// Inputs for the element-wise ops: uniform in [-12, 12) with specials sprinkled in, among them the points
// where torch's f32 kernels give NaN (silu(-inf), gelu(-inf)) and results that underflow to subnormals or -0.
std::vector<float> activation_input(int64_t n, uint32_t seed) {
  std::vector<float> v = uniform(n, seed, -12.0f, 12.0f);
  sprinkle(v, seed + 1,
           {kNaN, kInf, -kInf, -0.0f, 0.0f, -100.0f, 100.0f, -1e-30f, 1e-40f, 1e30f, -1e30f, -88.0f, 88.0f,
            -745.0f, kMax, -kMax});
  return v;
}

class CudaAdd : public GpuParamTest<int64_t> {};

// One f32 addition per element on both sides: exact (NaN where the CPU has NaN).
TEST_P(CudaAdd, SameShapeMatchesTheCpuIntoEitherOperand) {
  const int64_t n = GetParam();
  HostTensor a = f32({n}, activation_input(n, 61));
  HostTensor b = f32({n}, activation_input(n, 62));
  HostTensor want(DType::F32, Shape{n});
  ops::add(cpu(), a, b, want);
  Guarded da = upload(a);
  Guarded db = upload(b);
  Guarded out = output(DType::F32, Shape{n});
  ops::add(gpu(), da, db, out);
  expect_close(download(out), want, kExact);
  expect_guards_intact(out);
  ops::add(gpu(), da, db, da);  // out = a
  expect_close(download(da), want, kExact);
  Guarded da2 = upload(a);
  ops::add(gpu(), da2, db, db);  // out = b
  expect_close(download(db), want, kExact);
  expect_guards_intact(db);
}

// 2^24 + 7 elements need more than the 2^16 blocks x 256 threads of one grid pass.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaAdd, ::testing::Values(1, 7, 33, 1000, 100003, (int64_t{1} << 24) + 7));

class CudaAddRows : public GpuParamTest<NormCase> {};

TEST_P(CudaAddRows, RowBroadcastMatchesTheCpuInPlaceToo) {
  const auto [rows, width] = GetParam();
  HostTensor a = f32({rows, width}, activation_input(rows * width, 63));
  HostTensor b = f32({width}, activation_input(width, 64));
  HostTensor want(DType::F32, Shape{rows, width});
  ops::add(cpu(), a, b, want);
  Guarded da = upload(a);
  Guarded db = upload(b);
  Guarded out = output(DType::F32, Shape{rows, width});
  ops::add(gpu(), da, db, out);
  expect_close(download(out), want, kExact);
  expect_guards_intact(out);
  ops::add(gpu(), da, db, da);
  expect_close(download(da), want, kExact);
  expect_guards_intact(da);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAddRows,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{1001, 67},
                                           NormCase{3, 4099}, NormCase{(1 << 20) + 5, 3}),
                         norm_case_name);

class CudaActivation : public GpuParamTest<int64_t> {};

// Both backends evaluate each activation in double with the same formula and round once to f32; the double
// library functions (exp, erfc) differ by a few double ulps at most, so the f32 results agree except when the
// double lies at an f32 rounding boundary: one f32 ulp (rel 1.2e-7). The gated forms add one f32 multiply of
// that value by up: 2 ulps (rel 2.4e-7). Subnormal results may differ by one subnormal ulp (abs 1e-44).
TEST_P(CudaActivation, EveryActivationMatchesTheCpuInPlaceToo) {
  const int64_t n = GetParam();
  for_each_alignment([&] {
    const Tolerance unary{1e-44, 1.2e-7};
    const Tolerance gated{1e-44, 2.4e-7};
    HostTensor x = f32({n}, activation_input(n, 71));
    HostTensor up = f32({n}, activation_input(n, 72));
    Guarded dx = upload(x);
    Guarded dup = upload(up);
    for (int which = 0; which < 3; ++which) {
      const GeluApproximation approximation = which == 2 ? GeluApproximation::Tanh : GeluApproximation::None;
      const std::string name = which == 0 ? "silu" : which == 1 ? "gelu" : "gelu-tanh";
      SCOPED_TRACE(name);
      auto unary_op = [&](Backend& backend, const Tensor& in, const Tensor& result) {
        if (which == 0) {
          ops::silu(backend, in, result);
        } else {
          ops::gelu(backend, in, approximation, result);
        }
      };
      auto gated_op = [&](Backend& backend, const Tensor& gate, const Tensor& u, const Tensor& result) {
        if (which == 0) {
          ops::swiglu(backend, gate, u, result);
        } else {
          ops::geglu(backend, gate, u, approximation, result);
        }
      };
      HostTensor want(DType::F32, Shape{n});
      unary_op(cpu(), x, want);
      Guarded out = output(DType::F32, Shape{n});
      unary_op(gpu(), dx, out);
      expect_close(download(out), want, unary);
      expect_guards_intact(out);
      Guarded in_place = upload(x);
      unary_op(gpu(), in_place, in_place);
      expect_close(download(in_place), want, unary);

      HostTensor want_gated(DType::F32, Shape{n});
      gated_op(cpu(), x, up, want_gated);
      Guarded gated_out = output(DType::F32, Shape{n});
      gated_op(gpu(), dx, dup, gated_out);
      expect_close(download(gated_out), want_gated, gated);
      expect_guards_intact(gated_out);
      Guarded into_gate = upload(x);
      gated_op(gpu(), into_gate, dup, into_gate);
      expect_close(download(into_gate), want_gated, gated);
      Guarded into_up = upload(up);
      gated_op(gpu(), dx, into_up, into_up);
      expect_close(download(into_up), want_gated, gated);
      expect_guards_intact(into_up);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaActivation,
                         ::testing::Values(1, 7, 33, 1000, 100003, (int64_t{1} << 24) + 7));

// The gated forms on the two column blocks of one [rows, 2 * width] matrix (a fused gate/up projection's
// output, and the other way round), as EveryActivationMatchesTheCpuInPlaceToo's gated tolerance.
TEST_P(CudaActivation, GatedFormsTakeTheHalvesOfOneMatrix) {
  const int64_t width = GetParam();
  for_each_alignment([&] {
    if (width > 100003) GTEST_SKIP() << "covered by the smaller widths";
    const int64_t rows = 5;
    const Tolerance gated{1e-44, 2.4e-7};
    HostTensor both = f32({rows, 2 * width}, activation_input(rows * 2 * width, 73));
    Guarded device_both = upload(both);
    const auto half = [&](const Tensor& t, int64_t which) {
      return t.slice(1, which * width, (which + 1) * width);
    };
    for (int64_t gate_half : {0, 1}) {
      SCOPED_TRACE(gate_half == 0 ? "gate first" : "up first");
      HostTensor want(DType::F32, Shape{rows, width});
      ops::swiglu(cpu(), half(both, gate_half), half(both, 1 - gate_half), want);
      Guarded out = output(DType::F32, Shape{rows, width});
      ops::swiglu(gpu(), half(device_both, gate_half), half(device_both, 1 - gate_half), out);
      expect_close(download(out), want, gated);
      expect_guards_intact(out);
      ops::geglu(cpu(), half(both, gate_half), half(both, 1 - gate_half), GeluApproximation::Tanh, want);
      ops::geglu(gpu(), half(device_both, gate_half), half(device_both, 1 - gate_half),
                 GeluApproximation::Tanh, out);
      expect_close(download(out), want, gated);
    }
  });
}

}  // namespace
}  // namespace dlm
