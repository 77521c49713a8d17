// The CPU backend's norms (RMSNorm, LayerNorm, the fused add + RMSNorm) and rotary embeddings through their
// front-ends. Expected values are worked out by hand (the numbers in comments) or, for the large odd-shaped
// cases, by a plain double-precision loop written here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "tests/unit/dense_op_checks.h"

namespace dlm {
namespace {

using namespace dense_test;

// ---------------------------------------------------------------------------------------------------- norms

TEST(RmsNorm, PlainAndOnePlusByHand) {
  // x = [3, 4]: mean(x^2) = 12.5, 1/sqrt(12.5) = 0.28284271; x_hat = [0.84852814, 1.13137085].
  HostTensor x = f32({1, 2}, {3, 4});
  HostTensor out(DType::F32, {1, 2});
  ops::rms_norm(backend(), x, f32({2}, {1, 2}), 0.0f, NormWeight::Plain, out);
  expect_near_all(out.to_vector<float>(), std::vector<double>{0.848528137423857, 2.262741699796952}, 1e-6);
  // OnePlus with w - 1 = [0, 1] scales by the same [1, 2].
  ops::rms_norm(backend(), x, f32({2}, {0, 1}), 0.0f, NormWeight::OnePlus, out);
  expect_near_all(out.to_vector<float>(), std::vector<double>{0.848528137423857, 2.262741699796952}, 1e-6);
}

TEST(RmsNorm, EpsilonAndHalfWeights) {
  // x = [1,1,1,1], eps = 1: 1 / sqrt(1 + 1) = 0.70710678 per element, times w.
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<float> wv = {1, -2, 0.5f, 3};
    HostTensor w = dtype == DType::F32 ? f32({4}, wv) : narrow(dtype, {4}, wv);
    HostTensor out(DType::F32, {2, 1, 4});
    ops::rms_norm(backend(), filled({2, 1, 4}, 1.0f), w, 1.0f, NormWeight::Plain, out);
    const double s = 0.7071067811865475;
    expect_near_all(out.to_vector<float>(),
                    std::vector<double>{s, -2 * s, 0.5 * s, 3 * s, s, -2 * s, 0.5 * s, 3 * s}, 1e-6);
  }
}

TEST(RmsNorm, InPlaceNaNAndInfStayInTheirRow) {
  // Row 0 holds NaN: all NaN. Row 1 holds +inf: mean(x^2) = inf, x * 0 -> [NaN, 0] as in torch.
  // Row 2 = [3, 4] as above, computed in place.
  HostTensor x = f32({3, 2}, {kNaN, 1, kInf, 1, 3, 4});
  ops::rms_norm(backend(), x, f32({2}, {1, 1}), 0.0f, NormWeight::Plain, x);
  std::vector<float> got = x.to_vector<float>();
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_TRUE(std::isnan(got[1]));
  EXPECT_TRUE(std::isnan(got[2]));
  EXPECT_EQ(got[3], 0.0f);
  EXPECT_NEAR(got[4], 0.848528137423857, 1e-6);
  EXPECT_NEAR(got[5], 1.131370849898476, 1e-6);
}

TEST(RmsNorm, OddShapeMatchesDoubleReference) {
  constexpr int64_t kRows = 37;
  constexpr int64_t kWidth = 1029;
  std::vector<float> xv = random_values(kRows * kWidth, 4, 3.0f);
  std::vector<float> wv = random_values(kWidth, 5);
  for (NormWeight mode : {NormWeight::Plain, NormWeight::OnePlus}) {
    std::vector<double> want(xv.size());
    for (int64_t r = 0; r < kRows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < kWidth; ++i) ss += static_cast<double>(xv[r * kWidth + i]) * xv[r * kWidth + i];
      const double inv = 1.0 / std::sqrt(ss / kWidth + 1e-6);
      for (int64_t i = 0; i < kWidth; ++i) {
        const double scale = mode == NormWeight::OnePlus ? 1.0 + wv[i] : wv[i];
        want[r * kWidth + i] = xv[r * kWidth + i] * inv * scale;
      }
    }
    HostTensor out(DType::F32, {kRows, kWidth});
    ops::rms_norm(backend(), f32({kRows, kWidth}, xv), f32({kWidth}, wv), 1e-6f, mode, out);
    expect_near_all(out.to_vector<float>(), want, 1e-5);
  }
}

TEST(LayerNorm, WithAndWithoutBiasByHand) {
  // x = [1,2,3,4]: mean 2.5, var = (2.25+0.25+0.25+2.25)/4 = 1.25, 1/sqrt(1.25) = 0.89442719;
  // x_hat = [-1.34164079, -0.44721360, 0.44721360, 1.34164079]; w = [1,1,2,2], b = [0,1,0,1].
  HostTensor x = f32({1, 4}, {1, 2, 3, 4});
  HostTensor w = f32({4}, {1, 1, 2, 2});
  HostTensor b = f32({4}, {0, 1, 0, 1});
  HostTensor out(DType::F32, {1, 4});
  ops::layer_norm(backend(), x, w, b.tensor(), 0.0f, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{-1.3416407864998738, 0.5527864045000421, 0.8944271909999159, 3.6832815729997477},
      1e-6);
  ops::layer_norm(backend(), x, w, std::nullopt, 0.0f, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{-1.3416407864998738, -0.4472135954999579, 0.8944271909999159, 2.6832815729997477},
      1e-6);
}

TEST(LayerNorm, HalfWeightsInPlaceAndFarFromZero) {
  // x = 4096 + [0,1,2,3] * 2^-11 (f32 ulps at 4096) normalizes like [1,2,3,4]. Its mean, 4096 + 1.5 * 2^-11,
  // is not an f32: rounded, it would centre the row as [-2,-1,0,1] ulps instead of [-1.5,-0.5,0.5,1.5].
  for (DType dtype : {DType::BF16, DType::F16}) {
    HostTensor x = f32({1, 4}, {4096.0f, 4096.00048828125f, 4096.0009765625f, 4096.00146484375f});
    HostTensor w = narrow(dtype, {4}, {1, 1, 2, 2});
    HostTensor b = narrow(dtype, {4}, {0, 1, 0, 1});
    ops::layer_norm(backend(), x, w, b.tensor(), 0.0f, x);
    expect_near_all(
        x.to_vector<float>(),
        std::vector<double>{-1.3416407864998738, 0.5527864045000421, 0.8944271909999159, 3.6832815729997477},
        1e-6);
  }
}

TEST(AddRmsNorm, SumsThenNormsByHandWhateverTheOutputsAlias) {
  // x + residual = [3, 4] per row (x = [1, 3], residual = [2, 1]): the sum, then its norm as above.
  const std::vector<double> want_norm{0.848528137423857, 2.262741699796952};
  HostTensor w = f32({2}, {1, 2});
  {
    HostTensor x = f32({1, 2}, {1, 3}), residual = f32({1, 2}, {2, 1});
    HostTensor sum(DType::F32, {1, 2}), norm(DType::F32, {1, 2});
    ops::add_rms_norm(backend(), x, residual, w, 0.0f, NormWeight::Plain, sum, norm);
    expect_near_all(sum.to_vector<float>(), std::vector<double>{3, 4}, 0.0);
    expect_near_all(norm.to_vector<float>(), want_norm, 1e-6);
  }
  {  // the sum into x, the norm into the residual (a transformer layer's residual stream)
    HostTensor x = f32({1, 2}, {1, 3}), residual = f32({1, 2}, {2, 1});
    ops::add_rms_norm(backend(), x, residual, w, 0.0f, NormWeight::Plain, x, residual);
    expect_near_all(x.to_vector<float>(), std::vector<double>{3, 4}, 0.0);
    expect_near_all(residual.to_vector<float>(), want_norm, 1e-6);
  }
  {  // the other way round
    HostTensor x = f32({1, 2}, {1, 3}), residual = f32({1, 2}, {2, 1});
    ops::add_rms_norm(backend(), x, residual, w, 0.0f, NormWeight::Plain, residual, x);
    expect_near_all(residual.to_vector<float>(), std::vector<double>{3, 4}, 0.0);
    expect_near_all(x.to_vector<float>(), want_norm, 1e-6);
  }
}

TEST(AddRmsNorm, RejectsBadOperands) {
  auto expect_error = [](const std::function<void()>& call, const std::string& words) {
    try {
      call();
      ADD_FAILURE() << "no error; expected one mentioning " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  HostTensor x = filled({2, 4}, 1.0f), residual = filled({2, 4}, 1.0f), w = filled({4}, 1.0f);
  HostTensor sum(DType::F32, {2, 4}), norm(DType::F32, {2, 4}), wide(DType::F32, {2, 8});
  const auto call = [&](const Tensor& r, const Tensor& s, const Tensor& n) {
    return [&, r, s, n] { ops::add_rms_norm(backend(), x, r, w, 1e-6f, NormWeight::Plain, s, n); };
  };
  expect_error(call(filled({2, 3}, 1.0f), sum, norm), "add_rms_norm: residual");
  expect_error(call(residual, HostTensor(DType::F32, {4, 2}), norm), "add_rms_norm: sum_out");
  expect_error(call(residual, sum, HostTensor(DType::F32, {4, 2})), "add_rms_norm: norm_out");
  expect_error(call(residual, sum, sum), "norm_out");
  // An output that overlaps an input without being it.
  const Tensor shifted = wide.tensor().reshape(Shape{16}).slice(0, 2, 10).reshape(Shape{2, 4});
  const Tensor wide_x = wide.tensor().reshape(Shape{16}).slice(0, 0, 8).reshape(Shape{2, 4});
  EXPECT_THROW(ops::add_rms_norm(backend(), wide_x, residual, w, 1e-6f, NormWeight::Plain, shifted, norm),
               Error);
}

TEST(Norms, RejectBadOperands) {
  HostTensor x = filled({2, 4}, 1.0f);
  HostTensor out(DType::F32, {2, 4});
  EXPECT_THROW(ops::rms_norm(backend(), x, filled({3}, 1.0f), 1e-6f, NormWeight::Plain, out), Error);
  EXPECT_THROW(ops::rms_norm(backend(), x, i32({4}, {1, 1, 1, 1}), 1e-6f, NormWeight::Plain, out), Error);
  HostTensor out_wrong(DType::F32, {4, 2});
  EXPECT_THROW(ops::rms_norm(backend(), x, filled({4}, 1.0f), 1e-6f, NormWeight::Plain, out_wrong), Error);
  HostTensor x_bf16 = narrow(DType::BF16, {2, 4}, std::vector<float>(8, 1.0f));
  EXPECT_THROW(ops::rms_norm(backend(), x_bf16, filled({4}, 1.0f), 1e-6f, NormWeight::Plain, out), Error);
  EXPECT_THROW(ops::layer_norm(backend(), x, filled({4}, 1.0f), filled({5}, 0.0f).tensor(), 1e-5f, out),
               Error);
}

// ----------------------------------------------------------------------------------------------------- rope

// One token at position 1, inv_freq = [1, 0.5]: angles 1 and 0.5.
// cos 1 = 0.54030231, sin 1 = 0.84147098, cos 0.5 = 0.87758256, sin 0.5 = 0.47942554.
TEST(Rope, HalfSplitPairsFeatureIWithIPlusHalf) {
  // x = [1,2,3,4]: pairs (x0,x2) at angle 1 and (x1,x3) at angle 0.5.
  // out0 = 1 cos1 - 3 sin1, out2 = 3 cos1 + 1 sin1, out1 = 2 cos.5 - 4 sin.5, out3 = 4 cos.5 + 2 sin.5.
  HostTensor x = f32({1, 1, 4}, {1, 2, 3, 4});
  HostTensor out(DType::F32, {1, 1, 4});
  RopeParams params{RopeLayout::HalfSplit, 4, 1.0f};
  ops::rope(backend(), x, i32({1}, {1}), f32({2}, {1.0f, 0.5f}), params, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{-1.9841106485555495, -0.1625370306360665, 2.4623779024123156, 4.469181324769897},
      1e-6);
}

TEST(Rope, InterleavedPairsNeighbours) {
  // Pairs (x0,x1) at angle 1 and (x2,x3) at angle 0.5.
  // out0 = 1 cos1 - 2 sin1, out1 = 2 cos1 + 1 sin1, out2 = 3 cos.5 - 4 sin.5, out3 = 4 cos.5 + 3 sin.5.
  HostTensor x = f32({1, 1, 4}, {1, 2, 3, 4});
  HostTensor out(DType::F32, {1, 1, 4});
  RopeParams params{RopeLayout::Interleaved, 4, 1.0f};
  ops::rope(backend(), x, i32({1}, {1}), f32({2}, {1.0f, 0.5f}), params, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{-1.1426396637476532, 1.922075596544176, 0.7150455312543063, 4.9486068633741}, 1e-6);
}

TEST(Rope, PartialRotaryAttentionFactorHeadsAndPositionsInPlace) {
  // Two tokens (positions 0 and 1), two heads, D = 6 with rotary_dim = 4: features 4 and 5 pass through
  // unscaled. attention_factor 2 doubles cos and sin; at position 0 that doubles the rotated features.
  std::vector<float> head = {1, 2, 3, 4, 7, -8};
  std::vector<float> xv;
  for (int copy = 0; copy < 4; ++copy) xv.insert(xv.end(), head.begin(), head.end());
  HostTensor x = f32({2, 2, 6}, xv);
  RopeParams params{RopeLayout::HalfSplit, 4, 2.0f};
  ops::rope(backend(), x, i32({2}, {0, 1}), f32({2}, {1.0f, 0.5f}), params, x);
  std::vector<double> at0 = {2, 4, 6, 8, 7, -8};
  std::vector<double> at1 = {
      2 * -1.9841106485555495, 2 * -0.1625370306360665, 2 * 2.4623779024123156, 2 * 4.469181324769897, 7, -8};
  std::vector<double> want;
  for (const auto* row : {&at0, &at0, &at1, &at1}) want.insert(want.end(), row->begin(), row->end());
  expect_near_all(x.to_vector<float>(), want, 2e-6);
}

TEST(Rope, TakesTokensFurtherApartThanTheirHeads) {
  // x as heads 1..2 of a [3 tokens, 4 heads, 8] matrix (a column block of a fused projection's output): the
  // rotation of the same values made contiguous, into a contiguous out.
  constexpr int64_t kTokens = 3, kHeads = 2, kDim = 8, kWidth = 4 * kDim;
  const std::vector<float> values = random_values(kTokens * kWidth, 21, 1.0f);
  HostTensor wide = f32({kTokens, kWidth}, values);
  const Tensor columns = wide.tensor().slice(1, kDim, 3 * kDim);
  const Tensor block(columns.data(), DType::F32, Shape{kTokens, kHeads, kDim}, Shape{kWidth, kDim, 1},
                     Device{});
  std::vector<float> packed;
  for (int64_t t = 0; t < kTokens; ++t) {
    packed.insert(packed.end(), values.begin() + t * kWidth + kDim, values.begin() + t * kWidth + 3 * kDim);
  }
  const RopeParams params{RopeLayout::HalfSplit, 6, 1.0f};
  const HostTensor positions = i32({kTokens}, {0, 5, 9});
  const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, 6);
  HostTensor got(DType::F32, {kTokens, kHeads, kDim}), want(DType::F32, {kTokens, kHeads, kDim});
  ops::rope(backend(), block, positions, inv_freq, params, got);
  ops::rope(backend(), f32({kTokens, kHeads, kDim}, packed), positions, inv_freq, params, want);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  // Rotated in place it would overwrite the block's neighbours: an out overlapping a strided x is refused.
  EXPECT_THROW(ops::rope(backend(), block, positions, inv_freq, params, block), Error);
}

TEST(Rope, QkvSplitsAFusedProductIntoRotatedQAndKAndCopiedV) {
  // [2 tokens, 2 q heads + 1 k head + 1 v head of 4]: q and k as rope gives for the same values made
  // contiguous, v the values themselves.
  constexpr int64_t kTokens = 2, kDim = 4, kWidth = 4 * kDim;
  const std::vector<float> values = random_values(kTokens * kWidth, 22, 1.0f);
  const auto heads = [&](int64_t first, int64_t count) {
    std::vector<float> out;
    for (int64_t t = 0; t < kTokens; ++t) {
      const auto row = values.begin() + t * kWidth;
      out.insert(out.end(), row + first * kDim, row + (first + count) * kDim);
    }
    return out;
  };
  const RopeParams params{RopeLayout::HalfSplit, kDim, 1.0f};
  const HostTensor positions = i32({kTokens}, {3, 7});
  const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, kDim);
  HostTensor q(DType::F32, {kTokens, 2, kDim}), k(DType::F32, {kTokens, 1, kDim}),
      v(DType::F32, {kTokens, 1, kDim});
  ops::rope_qkv(backend(), f32({kTokens, kWidth}, values), positions, inv_freq, params, q, k, v);
  HostTensor want_q(DType::F32, {kTokens, 2, kDim}), want_k(DType::F32, {kTokens, 1, kDim});
  ops::rope(backend(), f32({kTokens, 2, kDim}, heads(0, 2)), positions, inv_freq, params, want_q);
  ops::rope(backend(), f32({kTokens, 1, kDim}, heads(2, 1)), positions, inv_freq, params, want_k);
  EXPECT_EQ(q.to_vector<float>(), want_q.to_vector<float>());
  EXPECT_EQ(k.to_vector<float>(), want_k.to_vector<float>());
  EXPECT_EQ(v.to_vector<float>(), heads(3, 1));
  // A product output one head too narrow for q, k and v is refused, naming qkv.
  try {
    ops::rope_qkv(backend(), f32({kTokens, kWidth - kDim}, heads(0, 3)), positions, inv_freq, params, q, k,
                  v);
    ADD_FAILURE() << "a narrow qkv was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qkv"), std::string::npos) << e.what();
  }
}

TEST(Copy, FromAColumnBlockIntoAContiguousTensor) {
  HostTensor wide = f32({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  HostTensor out(DType::F32, {3, 2});
  backend().copy(wide.tensor().slice(1, 1, 3), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_THROW(backend().copy(out, wide.tensor().slice(1, 1, 3)), Error);  // into a strided destination
  EXPECT_THROW(backend().copy(wide.tensor().transpose(0, 1), HostTensor(DType::F32, {4, 3})), Error);
}

TEST(Rope, LargePositionRoundsTheAngleToF32LikeHF) {
  // 100000 * f32(0.1) = 10000.000149... rounds to the f32 10000 (ulp there is 2^-10), so HF rotates by
  // exactly 10000 rad: cos = -0.95215537, sin = -0.30561439. An angle kept in double would give
  // cos = -0.95210982 instead, 4.6e-5 away.
  HostTensor x = f32({1, 1, 2}, {1, 0});
  HostTensor out(DType::F32, {1, 1, 2});
  RopeParams params{RopeLayout::Interleaved, 2, 1.0f};
  ops::rope(backend(), x, i32({1}, {100000}), f32({1}, {0.1f}), params, out);
  expect_near_all(out.to_vector<float>(), std::vector<double>{-0.9521553682590148, -0.30561438888825215},
                  1e-6);
}

TEST(Rope, ManyTokensMatchDoubleReference) {
  constexpr int64_t kTokens = 37;
  constexpr int64_t kHeads = 5;
  constexpr int64_t kDim = 24;
  constexpr int64_t kRotary = 16;
  std::vector<float> xv = random_values(kTokens * kHeads * kDim, 6);
  std::vector<int32_t> pos(kTokens);
  for (int64_t t = 0; t < kTokens; ++t) pos[t] = static_cast<int32_t>(t * 131);
  HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, kRotary);
  const float* freq = inv_freq.data<float>();
  for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
    std::vector<double> want(xv.begin(), xv.end());
    for (int64_t t = 0; t < kTokens; ++t) {
      for (int64_t h = 0; h < kHeads; ++h) {
        const float* in = xv.data() + (t * kHeads + h) * kDim;
        double* o = want.data() + (t * kHeads + h) * kDim;
        for (int64_t i = 0; i < kRotary / 2; ++i) {
          const double angle = static_cast<float>(pos[t]) * freq[i];
          const int64_t a = layout == RopeLayout::HalfSplit ? i : 2 * i;
          const int64_t b = layout == RopeLayout::HalfSplit ? i + kRotary / 2 : 2 * i + 1;
          o[a] = in[a] * std::cos(angle) - in[b] * std::sin(angle);
          o[b] = in[b] * std::cos(angle) + in[a] * std::sin(angle);
        }
      }
    }
    HostTensor out(DType::F32, {kTokens, kHeads, kDim});
    ops::rope(backend(), f32({kTokens, kHeads, kDim}, xv), i32({kTokens}, pos), inv_freq,
              RopeParams{layout, kRotary, 1.0f}, out);
    expect_near_all(out.to_vector<float>(), want, 1e-5);
  }
}

TEST(Rope, DefaultInvFreqIsThetaToTheMinusTwoIOverDim) {
  // theta = 10000, dim 8: exponents 0, 1/4, 1/2, 3/4 -> 1, 1/10, 1/100, 1/1000 (10000^(1/4) = 10 exactly).
  HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, 8);
  EXPECT_EQ(inv_freq.to_vector<float>(), (std::vector<float>{1.0f, 0.1f, 0.01f, 0.001f}));
  EXPECT_THROW(ops::default_rope_inv_freq(10000.0, 7), Error);
  EXPECT_THROW(ops::default_rope_inv_freq(10000.0, 0), Error);
}

TEST(Rope, RejectsBadOperands) {
  HostTensor x = filled({2, 1, 6}, 1.0f);
  HostTensor out(DType::F32, {2, 1, 6});
  HostTensor pos = i32({2}, {0, 1});
  HostTensor freq = f32({2}, {1, 0.5f});
  EXPECT_THROW(ops::rope(backend(), x, pos, freq, RopeParams{RopeLayout::HalfSplit, 3, 1.0f}, out), Error);
  EXPECT_THROW(ops::rope(backend(), x, pos, freq, RopeParams{RopeLayout::HalfSplit, 8, 1.0f}, out), Error);
  EXPECT_THROW(ops::rope(backend(), x, pos, freq, RopeParams{}, out), Error);  // rotary_dim left at 0
  EXPECT_THROW(ops::rope(backend(), x, pos, freq, RopeParams{RopeLayout::HalfSplit, 6, 1.0f}, out), Error);
  HostTensor pos64 = HostTensor::from<int64_t>({2}, {0, 1});
  EXPECT_THROW(ops::rope(backend(), x, pos64, freq, RopeParams{RopeLayout::HalfSplit, 4, 1.0f}, out), Error);
  EXPECT_THROW(
      ops::rope(backend(), x, i32({3}, {0, 1, 2}), freq, RopeParams{RopeLayout::HalfSplit, 4, 1.0f}, out),
      Error);
  HostTensor x2 = filled({2, 6}, 1.0f);
  HostTensor out2(DType::F32, {2, 6});
  EXPECT_THROW(ops::rope(backend(), x2, pos, freq, RopeParams{RopeLayout::HalfSplit, 4, 1.0f}, out2), Error);
}

}  // namespace
}  // namespace dlm
