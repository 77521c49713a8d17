// The CPU backend's dense ops through their front-ends. Expected values are worked out by hand (the numbers
// in comments) or, for the large odd-shaped cases, by a plain double-precision loop written here.
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
#include "engine/ops/cast.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/linear.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "engine/ops/softmax.h"

namespace dlm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Four threads whatever the machine, so every parallel split is exercised.
CpuBackend& backend() {
  static CpuBackend cpu(4);
  return cpu;
}

HostTensor f32(Shape shape, const std::vector<float>& values) {
  return HostTensor::from(shape, values);
}

HostTensor i32(Shape shape, const std::vector<int32_t>& values) {
  return HostTensor::from(shape, values);
}

// A bf16 or f16 tensor holding `values` rounded to nearest even.
HostTensor narrow(DType dtype, Shape shape, const std::vector<float>& values) {
  HostTensor out(dtype, shape);
  auto* bits = static_cast<uint16_t*>(out.tensor().data());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return out;
}

// The values a bf16/f16 tensor holds, widened to f32.
std::vector<float> widen(const HostTensor& t) {
  const auto* bits = static_cast<const uint16_t*>(t.tensor().data());
  std::vector<float> out(static_cast<size_t>(t.tensor().numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = t.tensor().dtype() == DType::BF16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]);
  }
  return out;
}

HostTensor filled(Shape shape, float value) {
  return f32(shape, std::vector<float>(static_cast<size_t>(shape.numel()), value));
}

// Uniform in [-scale, scale), from a fixed seed.
std::vector<float> random_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) v = scale * (static_cast<float>(gen()) / 4294967296.0f * 2.0f - 1.0f);
  return out;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance) << "at index " << i;
  }
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tolerance) {
  expect_near_all(got, std::vector<double>(want.begin(), want.end()), tolerance);
}

// ---------------------------------------------------------------------------------------------------- cast

TEST(Cast, F32ToBf16RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even gives 1 (0x3f80);
  // 1 + 3 * 2^-8 ties up to 1 + 2^-6 (0x3f82); -3 is exact (0xc040).
  HostTensor x = f32({4}, {1.0f, 1.00390625f, 1.01171875f, -3.0f});
  HostTensor out(DType::BF16, {4});
  ops::cast(backend(), x, out);
  const auto* bits = static_cast<const uint16_t*>(out.tensor().data());
  EXPECT_EQ(bits[0], 0x3f80);
  EXPECT_EQ(bits[1], 0x3f80);
  EXPECT_EQ(bits[2], 0x3f82);
  EXPECT_EQ(bits[3], 0xc040);
}

TEST(Cast, F32ToF16OverflowsToInfinityAndKeepsNaN) {
  HostTensor x = f32({4}, {65504.0f, 1e5f, -0.5f, kNaN});
  HostTensor out(DType::F16, {4});
  ops::cast(backend(), x, out);
  const auto* bits = static_cast<const uint16_t*>(out.tensor().data());
  EXPECT_EQ(bits[0], 0x7bff);  // the largest finite f16
  EXPECT_EQ(bits[1], 0x7c00);  // +inf
  EXPECT_EQ(bits[2], 0xb800);  // -0.5
  EXPECT_EQ(bits[3] & 0x7c00, 0x7c00);
  EXPECT_NE(bits[3] & 0x03ff, 0);
}

TEST(Cast, HalfFormatsWidenExactlyAndConvertBetweenEachOther) {
  // bf16 0x3fc0 = 1.5, 0xc2f7 = -123.5; f16 0x3e00 = 1.5, 0xd7b8 = -123.5.
  HostTensor b(DType::BF16, {2});
  static_cast<uint16_t*>(b.tensor().data())[0] = 0x3fc0;
  static_cast<uint16_t*>(b.tensor().data())[1] = 0xc2f7;
  HostTensor wide(DType::F32, {2});
  ops::cast(backend(), b, wide);
  EXPECT_EQ(wide.to_vector<float>(), (std::vector<float>{1.5f, -123.5f}));
  HostTensor h(DType::F16, {2});
  ops::cast(backend(), b, h);
  EXPECT_EQ(static_cast<const uint16_t*>(h.tensor().data())[0], 0x3e00);
  EXPECT_EQ(static_cast<const uint16_t*>(h.tensor().data())[1], 0xd7b8);
}

TEST(Cast, F16WidensEveryBitPatternLikeTheScalarConversion) {
  // Every f16 value, subnormals, infinities and NaN payloads included, bit for bit as half.h's f16_to_f32.
  HostTensor h(DType::F16, {65536});
  auto* bits = static_cast<uint16_t*>(h.tensor().data());
  for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
  HostTensor wide(DType::F32, {65536});
  ops::cast(backend(), h, wide);
  const float* got = wide.data<float>();
  for (uint32_t i = 0; i < 65536; ++i) {
    const float want = f16_to_f32(static_cast<uint16_t>(i));
    ASSERT_EQ(std::memcmp(&got[i], &want, sizeof want), 0)
        << "f16 bits " << i << ": " << got[i] << " vs " << want;
  }
}

TEST(Cast, LargeRoundTripIsExactOnEveryThreadSplit) {
  // Any bf16 value survives bf16 -> f32 -> bf16 unchanged; 100003 elements span many chunks.
  std::vector<float> values = random_values(100003, 7, 1000.0f);
  HostTensor b = narrow(DType::BF16, {100003}, values);
  HostTensor wide(DType::F32, {100003});
  HostTensor back(DType::BF16, {100003});
  ops::cast(backend(), b, wide);
  ops::cast(backend(), wide, back);
  EXPECT_EQ(wide.to_vector<float>(), widen(b));
  EXPECT_EQ(std::memcmp(b.tensor().data(), back.tensor().data(), b.tensor().nbytes()), 0);
}

TEST(Cast, RejectsIntegerDtypeAndShapeMismatch) {
  HostTensor ids = i32({3}, {1, 2, 3});
  HostTensor out(DType::F32, {3});
  EXPECT_THROW(ops::cast(backend(), ids, out), Error);
  HostTensor x = filled({3}, 1.0f);
  HostTensor wrong(DType::BF16, {4});
  EXPECT_THROW(ops::cast(backend(), x, wrong), Error);
}

// -------------------------------------------------------------------------------------------------- linear

// x = [[1,2,3],[4,5,6]], weight = [[1,0,-1],[0.5,0.5,0.5]], bias = [10,-1]:
// row 0: 1-3+10 = 8, 0.5*(1+2+3)-1 = 2; row 1: 4-6+10 = 8, 0.5*15-1 = 6.5.
const std::vector<float> kLinearX = {1, 2, 3, 4, 5, 6};
const std::vector<float> kLinearW = {1, 0, -1, 0.5f, 0.5f, 0.5f};

TEST(Linear, SmallWithAndWithoutBias) {
  HostTensor x = f32({2, 3}, kLinearX);
  HostTensor w = f32({2, 3}, kLinearW);
  HostTensor bias = f32({2}, {10, -1});
  HostTensor out = filled({2, 2}, kNaN);  // whatever out held must not leak into the result
  ops::linear(backend(), x, w, bias.tensor(), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{8, 2, 8, 6.5f}));
  ops::linear(backend(), x, w, std::nullopt, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{-2, 3, -2, 7.5f}));
}

TEST(Linear, HalfWeightsAndBiasGiveTheExactResult) {
  // All weights and biases are exact in bf16 and f16, so the results are those of the f32 case.
  for (DType dtype : {DType::BF16, DType::F16}) {
    HostTensor x = f32({2, 3}, kLinearX);
    HostTensor w = narrow(dtype, {2, 3}, kLinearW);
    HostTensor bias = narrow(dtype, {2}, {10, -1});
    HostTensor out(DType::F32, {2, 2});
    ops::linear(backend(), x, w, bias.tensor(), out);
    EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{8, 2, 8, 6.5f})) << dtype_name(dtype);
  }
}

TEST(Linear, SingleRowUsesTheVectorPath) {
  // [1,2,3] . [1,0,-1] = -2; . [0.5,0.5,0.5] = 3; plus bias [10,-1].
  HostTensor x = f32({1, 3}, {1, 2, 3});
  HostTensor w = f32({2, 3}, kLinearW);
  HostTensor bias = f32({2}, {10, -1});
  HostTensor out = filled({1, 2}, kNaN);
  ops::linear(backend(), x, w, bias.tensor(), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{8, 2}));
}

TEST(Linear, EmptyInnerDimensionGivesTheBias) {
  HostTensor x(DType::F32, {3, 0});
  HostTensor w(DType::F32, {2, 0});
  HostTensor bias = f32({2}, {1.5f, -2});
  HostTensor out = filled({3, 2}, kNaN);
  ops::linear(backend(), x, w, bias.tensor(), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1.5f, -2, 1.5f, -2, 1.5f, -2}));
}

// out = x weight^T + bias in double, the plain way.
std::vector<double> reference_linear(const std::vector<float>& x, const std::vector<float>& w,
                                     const std::vector<float>& bias, int64_t m, int64_t k, int64_t n) {
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias.empty() ? 0.0 : bias[j];
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(x[i * k + p]) * w[j * k + p];
      out[i * n + j] = acc;
    }
  }
  return out;
}

struct LinearShape {
  int64_t m, k, n;
};

class LinearOddShapes : public testing::TestWithParam<LinearShape> {};

TEST_P(LinearOddShapes, MatchesDoubleReferenceForEveryWeightDtype) {
  const auto [m, k, n] = GetParam();
  std::vector<float> xv = random_values(m * k, 1);
  // Weights and biases are rounded to values exact in both bf16 and f16, so all three runs see one matrix.
  std::vector<float> wv = widen(narrow(DType::BF16, {n, k}, random_values(n * k, 2)));
  for (float& v : wv) v = f16_to_f32(f32_to_f16(v));
  std::vector<float> bv = widen(narrow(DType::BF16, {n}, random_values(n, 3)));
  for (float& v : bv) v = f16_to_f32(f32_to_f16(v));
  const std::vector<double> want = reference_linear(xv, wv, bv, m, k, n);
  // f32 rounding of a sum of k products of magnitude <= 1 stays well under 1e-6 * k.
  const double tolerance = 1e-6 * static_cast<double>(k);

  HostTensor x = f32({m, k}, xv);
  HostTensor w32 = f32({n, k}, wv);
  HostTensor b32 = f32({n}, bv);
  HostTensor out32(DType::F32, {m, n});
  ops::linear(backend(), x, w32, b32.tensor(), out32);
  expect_near_all(out32.to_vector<float>(), want, tolerance);

  for (DType dtype : {DType::BF16, DType::F16}) {
    HostTensor w = narrow(dtype, {n, k}, wv);
    ASSERT_EQ(widen(w), wv);
    HostTensor b = narrow(dtype, {n}, bv);
    HostTensor out = filled({m, n}, kNaN);
    ops::linear(backend(), x, w, b.tensor(), out);
    // Widening is exact, so a half weight gives what its f32 upcast gives.
    std::vector<float> got = out.to_vector<float>();
    std::vector<float> base = out32.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], base[i]) << dtype_name(dtype) << " " << i;
  }

  CpuBackend single(1);
  HostTensor out1(DType::F32, {m, n});
  ops::linear(single, x, w32, b32.tensor(), out1);
  expect_near_all(out1.to_vector<float>(), out32.to_vector<float>(), 1e-6 * static_cast<double>(k));
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearOddShapes,
                         testing::Values(LinearShape{37, 129, 67}, LinearShape{1, 129, 3001},
                                         LinearShape{300, 33, 517}, LinearShape{41, 2000, 300},
                                         LinearShape{200, 2000, 40}, LinearShape{2, 5, 1}));

TEST(Linear, NaNInOneRowStaysInThatRow) {
  std::vector<float> xv = {1, kNaN, 3, 4, 5, 6};
  HostTensor x = f32({2, 3}, xv);
  HostTensor w = f32({2, 3}, kLinearW);
  HostTensor out(DType::F32, {2, 2});
  ops::linear(backend(), x, w, std::nullopt, out);
  std::vector<float> got = out.to_vector<float>();
  EXPECT_TRUE(std::isnan(got[1]));  // 0.5 * NaN
  EXPECT_EQ(got[2], -2.0f);
  EXPECT_EQ(got[3], 7.5f);
}

TEST(Linear, RejectsBadOperands) {
  HostTensor x = f32({2, 3}, kLinearX);
  HostTensor w = f32({2, 3}, kLinearW);
  HostTensor out(DType::F32, {2, 2});
  HostTensor w_wide = filled({2, 4}, 1.0f);
  EXPECT_THROW(ops::linear(backend(), x, w_wide, std::nullopt, out), Error);  // K mismatch
  HostTensor out_wrong(DType::F32, {2, 3});
  EXPECT_THROW(ops::linear(backend(), x, w, std::nullopt, out_wrong), Error);
  HostTensor bias_wrong = f32({3}, {1, 2, 3});
  EXPECT_THROW(ops::linear(backend(), x, w, bias_wrong.tensor(), out), Error);
  HostTensor x_bf16 = narrow(DType::BF16, {2, 3}, kLinearX);
  EXPECT_THROW(ops::linear(backend(), x_bf16, w, std::nullopt, out), Error);
  HostTensor w_int = i32({2, 3}, {1, 0, -1, 0, 0, 0});
  EXPECT_THROW(ops::linear(backend(), x, w_int, std::nullopt, out), Error);
  HostTensor x_rank3 = f32({1, 2, 3}, kLinearX);
  EXPECT_THROW(ops::linear(backend(), x_rank3, w, std::nullopt, out), Error);
  Tensor x_strided = x.tensor().transpose(0, 1);  // [3,2] view, not contiguous
  HostTensor w_2 = f32({2, 2}, {1, 0, 0, 1});
  HostTensor out_3(DType::F32, {3, 2});
  EXPECT_THROW(ops::linear(backend(), x_strided, w_2, std::nullopt, out_3), Error);
}

// ----------------------------------------------------------------------------------------------- embedding

// table rows: r0 = [0, 0.5, 1], r1 = [-1, -2, -3], r2 = [4, 5, 6], r3 = [0.25, -0.25, 8].
const std::vector<float> kTable = {0, 0.5f, 1, -1, -2, -3, 4, 5, 6, 0.25f, -0.25f, 8};
const std::vector<float> kRows303 = {0.25f, -0.25f, 8, 0, 0.5f, 1, 0.25f, -0.25f, 8};

TEST(Embedding, GathersRowsForEveryTableAndIdDtype) {
  for (DType table_dtype : {DType::F32, DType::BF16, DType::F16}) {
    HostTensor table = table_dtype == DType::F32 ? f32({4, 3}, kTable) : narrow(table_dtype, {4, 3}, kTable);
    HostTensor out(DType::F32, {3, 3});
    ops::embedding(backend(), table, i32({3}, {3, 0, 3}), out);
    EXPECT_EQ(out.to_vector<float>(), kRows303) << dtype_name(table_dtype);
    HostTensor ids64 = HostTensor::from<int64_t>({3}, {3, 0, 3});
    ops::embedding(backend(), table, ids64, out);
    EXPECT_EQ(out.to_vector<float>(), kRows303) << dtype_name(table_dtype);
  }
}

TEST(Embedding, ManyIdsOnEveryThreadSplit) {
  constexpr int64_t kVocab = 50;
  constexpr int64_t kWidth = 33;
  std::vector<float> table_values(kVocab * kWidth);
  for (int64_t v = 0; v < kVocab; ++v) {
    for (int64_t d = 0; d < kWidth; ++d) table_values[v * kWidth + d] = static_cast<float>(v * 100 + d);
  }
  std::vector<int32_t> ids(1999);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7) % kVocab);
  HostTensor out(DType::F32, {1999, kWidth});
  ops::embedding(backend(), f32({kVocab, kWidth}, table_values), i32({1999}, ids), out);
  const float* got = out.data<float>();
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t d = 0; d < kWidth; ++d) {
      ASSERT_EQ(got[i * kWidth + d], static_cast<float>(ids[i] * 100 + d)) << i << "," << d;
    }
  }
}

TEST(Embedding, RejectsIdsOutsideTheTable) {
  HostTensor table = f32({4, 3}, kTable);
  HostTensor out(DType::F32, {2, 3});
  EXPECT_THROW(ops::embedding(backend(), table, i32({2}, {0, 4}), out), Error);
  EXPECT_THROW(ops::embedding(backend(), table, i32({2}, {-1, 0}), out), Error);
  HostTensor big = HostTensor::from<int64_t>({2}, {1, int64_t{1} << 33});
  EXPECT_THROW(ops::embedding(backend(), table, big, out), Error);
  try {
    ops::embedding(backend(), table, i32({2}, {0, 4}), out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id 4"), std::string::npos) << e.what();
  }
}

TEST(Embedding, RejectsBadOperands) {
  HostTensor table = f32({4, 3}, kTable);
  HostTensor out(DType::F32, {2, 3});
  EXPECT_THROW(ops::embedding(backend(), table, f32({2}, {0, 1}), out), Error);  // float ids
  HostTensor out_wrong(DType::F32, {2, 4});
  EXPECT_THROW(ops::embedding(backend(), table, i32({2}, {0, 1}), out_wrong), Error);
  EXPECT_THROW(ops::embedding(backend(), table, i32({1, 2}, {0, 1}), out), Error);  // ids rank 2
}

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

// ---------------------------------------------------------------------------------------------- elementwise

TEST(Add, SameShapeAndRowBroadcast) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor out(DType::F32, {2, 3});
  ops::add(backend(), a, f32({2, 3}, {0.5f, 0.5f, 0.5f, -1, -1, -1}), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1.5f, 2.5f, 3.5f, 3, 4, 5}));
  ops::add(backend(), a, f32({3}, {10, 20, 30}), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
}

TEST(Add, InPlaceIntoEitherOperandOnManyRows) {
  constexpr int64_t kRows = 1001;
  constexpr int64_t kWidth = 67;
  std::vector<float> av(kRows * kWidth);
  for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<float>(i);
  std::vector<float> bv(kWidth);
  for (int64_t j = 0; j < kWidth; ++j) bv[j] = -0.5f * static_cast<float>(j);
  HostTensor a = f32({kRows, kWidth}, av);
  ops::add(backend(), a, f32({kWidth}, bv), a);
  const float* got = a.data<float>();
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t j = 0; j < kWidth; ++j) {
      ASSERT_EQ(got[r * kWidth + j], static_cast<float>(r * kWidth + j) - 0.5f * static_cast<float>(j));
    }
  }
  HostTensor x = f32({2}, {1, 2});
  HostTensor y = f32({2}, {10, 20});
  ops::add(backend(), x, y, y);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{11, 22}));
}

TEST(Add, RejectsShapesThatDoNotBroadcast) {
  HostTensor a = filled({2, 3}, 1.0f);
  HostTensor out(DType::F32, {2, 3});
  EXPECT_THROW(ops::add(backend(), a, filled({2}, 1.0f), out), Error);     // [2] is not a's last axis
  EXPECT_THROW(ops::add(backend(), a, filled({1, 3}, 1.0f), out), Error);  // only rank-1 b broadcasts
  EXPECT_THROW(ops::add(backend(), a, filled({3}, 1.0f), filled({3}, 0.0f)), Error);
  EXPECT_THROW(ops::add(backend(), a, i32({3}, {1, 2, 3}), out), Error);
}

TEST(Activations, SiluByHand) {
  // silu(v) = v / (1 + e^-v): 0, 0.73105858, -0.26894142, 19.999999959, -4.1223072e-8.
  HostTensor x = f32({5}, {0, 1, -1, 20, -20});
  HostTensor out(DType::F32, {5});
  ops::silu(backend(), x, out);
  std::vector<float> got = out.to_vector<float>();
  expect_near_all(got,
                  std::vector<double>{0, 0.7310585786300049, -0.2689414213699951, 19.999999958776925,
                                      -4.122307236380407e-08},
                  1e-6);
  EXPECT_NEAR(got[4], -4.122307236380407e-08, 1e-13);
}

TEST(Activations, GeluExactAndTanhByHand) {
  // exact: 0.5 v (1 + erf(v / sqrt 2)); tanh: 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))).
  HostTensor x = f32({4}, {1, -1, 3, -3});
  HostTensor out(DType::F32, {4});
  ops::gelu(backend(), x, GeluApproximation::None, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{0.8413447460685429, -0.15865525393145707, 2.99595030590511, -0.00404969409489031},
      1e-6);
  ops::gelu(backend(), x, GeluApproximation::Tanh, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{0.8411919906082768, -0.15880800939172324, 2.996362607918227,
                                      -0.0036373920817729943},
                  1e-6);
}

TEST(Activations, InfAndNaNBehaveLikeTorch) {
  // torch (f32): silu(-inf) = NaN, silu(inf) = inf, gelu(-inf) = NaN, gelu(inf) = inf (both forms), NaN
  // stays NaN. silu(-100) = -100 / (1 + e^100) = -3.7e-42 (torch's f32 exp overflows and gives -0; either
  // is within f32 rounding of the true value). gelu(-100) is 0 to far below f32 resolution.
  HostTensor x = f32({4}, {-kInf, kInf, kNaN, -100});
  HostTensor out(DType::F32, {4});
  ops::silu(backend(), x, out);
  std::vector<float> s = out.to_vector<float>();
  EXPECT_TRUE(std::isnan(s[0]));
  EXPECT_EQ(s[1], kInf);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_LE(s[3], 0.0f);
  EXPECT_GT(s[3], -1e-41f);
  for (GeluApproximation approximation : {GeluApproximation::None, GeluApproximation::Tanh}) {
    ops::gelu(backend(), x, approximation, out);
    std::vector<float> g = out.to_vector<float>();
    EXPECT_TRUE(std::isnan(g[0]));
    EXPECT_EQ(g[1], kInf);
    EXPECT_TRUE(std::isnan(g[2]));
    EXPECT_EQ(g[3], 0.0f);
  }
}

TEST(Activations, GatedFormsMultiplyByUpInPlace) {
  // swiglu: silu([1, -1]) * [2, 3] = [1.46211716, -0.80682426]; geglu: gelu([1, -1]) * [2, 3].
  HostTensor gate = f32({2}, {1, -1});
  HostTensor up = f32({2}, {2, 3});
  HostTensor out(DType::F32, {2});
  ops::swiglu(backend(), gate, up, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{2 * 0.7310585786300049, 3 * -0.2689414213699951}, 1e-6);
  ops::geglu(backend(), gate, up, GeluApproximation::None, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{2 * 0.8413447460685429, 3 * -0.15865525393145707}, 1e-6);
  ops::geglu(backend(), gate, up, GeluApproximation::Tanh, up);
  expect_near_all(up.to_vector<float>(),
                  std::vector<double>{2 * 0.8411919906082768, 3 * -0.15880800939172324}, 1e-6);
}

TEST(Activations, ManyElementsMatchTheFormula) {
  constexpr int64_t kCount = 100003;
  std::vector<float> gv = random_values(kCount, 8, 6.0f);
  std::vector<float> uv = random_values(kCount, 9, 2.0f);
  HostTensor out(DType::F32, {kCount});
  ops::swiglu(backend(), f32({kCount}, gv), f32({kCount}, uv), out);
  const float* got = out.data<float>();
  for (int64_t i = 0; i < kCount; ++i) {
    const double g = gv[i];
    ASSERT_NEAR(got[i], g / (1 + std::exp(-g)) * uv[i], 1e-5) << i;
  }
  ops::geglu(backend(), f32({kCount}, gv), f32({kCount}, uv), GeluApproximation::None, out);
  for (int64_t i = 0; i < kCount; ++i) {
    const double g = gv[i];
    ASSERT_NEAR(got[i], 0.5 * g * (1 + std::erf(g / std::sqrt(2.0))) * uv[i], 1e-5) << i;
  }
}

TEST(Activations, GatedFormsTakeTheHalvesOfOneMatrix) {
  // gate and up as the column blocks of one [rows, 2 * width] matrix (a fused gate/up projection's output)
  // give what their contiguous copies give.
  constexpr int64_t kRows = 37, kWidth = 129;
  const std::vector<float> packed = random_values(kRows * 2 * kWidth, 10, 6.0f);
  HostTensor both = f32({kRows, 2 * kWidth}, packed);
  std::vector<float> gv, uv;
  for (int64_t r = 0; r < kRows; ++r) {
    gv.insert(gv.end(), packed.begin() + r * 2 * kWidth, packed.begin() + r * 2 * kWidth + kWidth);
    uv.insert(uv.end(), packed.begin() + r * 2 * kWidth + kWidth, packed.begin() + (r + 1) * 2 * kWidth);
  }
  const Tensor gate = both.tensor().slice(1, 0, kWidth);
  const Tensor up = both.tensor().slice(1, kWidth, 2 * kWidth);
  HostTensor got(DType::F32, {kRows, kWidth}), want(DType::F32, {kRows, kWidth});
  ops::swiglu(backend(), gate, up, got);
  ops::swiglu(backend(), f32({kRows, kWidth}, gv), f32({kRows, kWidth}, uv), want);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  ops::geglu(backend(), up, gate, GeluApproximation::Tanh, got);
  ops::geglu(backend(), f32({kRows, kWidth}, uv), f32({kRows, kWidth}, gv), GeluApproximation::Tanh, want);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  // The output must not overlap a strided input, and a strided view must be rank 2 with contiguous rows.
  EXPECT_THROW(ops::swiglu(backend(), gate, up, both.tensor().slice(1, 0, kWidth)), Error);
  HostTensor cube = filled({2, 3, 4}, 1.0f);
  const Tensor strided_3d = cube.tensor().slice(2, 0, 2);
  EXPECT_THROW(ops::swiglu(backend(), strided_3d, strided_3d, HostTensor(DType::F32, {2, 3, 2})), Error);
  const Tensor columns = both.tensor().transpose(0, 1);
  EXPECT_THROW(ops::swiglu(backend(), columns, columns, HostTensor(DType::F32, {2 * kWidth, kRows})), Error);
}

TEST(Activations, RejectBadOperands) {
  HostTensor x = filled({2, 3}, 1.0f);
  EXPECT_THROW(ops::silu(backend(), x, filled({3, 2}, 0.0f)), Error);
  EXPECT_THROW(ops::gelu(backend(), i32({2}, {1, 2}), GeluApproximation::None, filled({2}, 0.0f)), Error);
  EXPECT_THROW(ops::swiglu(backend(), x, filled({2, 4}, 1.0f), filled({2, 3}, 0.0f)), Error);
  EXPECT_THROW(ops::geglu(backend(), x, x, GeluApproximation::Tanh, filled({6}, 0.0f)), Error);
}

// -------------------------------------------------------------------------------------------------- softmax

TEST(Softmax, ByHandAndShiftInvariant) {
  // softmax([1,2,3]) = e^k / (e + e^2 + e^3) = [0.09003057, 0.24472847, 0.66524096];
  // log_softmax = [1,2,3] - 3.40760596. Adding 1000 changes nothing (the max is subtracted first).
  HostTensor x = f32({2, 3}, {1, 2, 3, 1001, 1002, 1003});
  HostTensor out(DType::F32, {2, 3});
  ops::softmax(backend(), x, out);
  const std::vector<double> p = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  expect_near_all(out.to_vector<float>(), std::vector<double>{p[0], p[1], p[2], p[0], p[1], p[2]}, 1e-6);
  ops::log_softmax(backend(), x, out);
  const std::vector<double> lp = {-2.40760596444438, -1.4076059644443801, -0.40760596444438013};
  expect_near_all(out.to_vector<float>(), std::vector<double>{lp[0], lp[1], lp[2], lp[0], lp[1], lp[2]},
                  1e-5);
}

TEST(Softmax, InfAndNaNRowsBehaveLikeTorch) {
  // torch: [-inf, 0] -> [0, 1] (log: [-inf, 0]); a row with +inf, a row of only -inf, a row with NaN: NaN.
  HostTensor x = f32({4, 2}, {-kInf, 0, kInf, 0, -kInf, -kInf, kNaN, 0});
  for (bool log : {false, true}) {
    HostTensor out(DType::F32, {4, 2});
    if (log) {
      ops::log_softmax(backend(), x, out);
    } else {
      ops::softmax(backend(), x, out);
    }
    std::vector<float> got = out.to_vector<float>();
    EXPECT_EQ(got[0], log ? -kInf : 0.0f);
    EXPECT_EQ(got[1], log ? 0.0f : 1.0f);
    for (int i = 2; i < 8; ++i) EXPECT_TRUE(std::isnan(got[i])) << "log " << log << " index " << i;
  }
}

TEST(Softmax, OddShapeInPlaceMatchesDoubleReference) {
  constexpr int64_t kRows = 37;
  constexpr int64_t kWidth = 1031;
  std::vector<float> xv = random_values(kRows * kWidth, 10, 8.0f);
  std::vector<double> want(xv.size());
  std::vector<double> want_log(xv.size());
  for (int64_t r = 0; r < kRows; ++r) {
    const float* row = xv.data() + r * kWidth;
    double m = row[0];
    for (int64_t i = 0; i < kWidth; ++i) m = std::max(m, static_cast<double>(row[i]));
    double total = 0;
    for (int64_t i = 0; i < kWidth; ++i) total += std::exp(row[i] - m);
    for (int64_t i = 0; i < kWidth; ++i) {
      want[r * kWidth + i] = std::exp(row[i] - m) / total;
      want_log[r * kWidth + i] = row[i] - m - std::log(total);
    }
  }
  HostTensor x = f32({kRows, kWidth}, xv);
  ops::softmax(backend(), x, x);
  expect_near_all(x.to_vector<float>(), want, 1e-6);
  HostTensor y = f32({kRows, kWidth}, xv);
  ops::log_softmax(backend(), y, y);
  expect_near_all(y.to_vector<float>(), want_log, 1e-5 * 20);
}

TEST(Softmax, RejectsBadOperands) {
  HostTensor x = filled({2, 3}, 1.0f);
  EXPECT_THROW(ops::softmax(backend(), x, filled({3, 2}, 0.0f)), Error);
  EXPECT_THROW(ops::log_softmax(backend(), i32({3}, {1, 2, 3}), filled({3}, 0.0f)), Error);
}

// Ops that read an input while writing the output refuse to write over that input.
TEST(Aliasing, OpsThatReadWhileWritingRejectOverlap) {
  HostTensor square = f32({4, 4}, std::vector<float>(16, 1.0f));
  const Tensor& t = square.tensor();
  EXPECT_THROW(ops::linear(backend(), t, t.slice(0, 0, 4), std::nullopt, t), Error);
  EXPECT_THROW(ops::linear(backend(), t.slice(0, 0, 2), t.slice(0, 2, 4), std::nullopt, t.slice(0, 0, 2)),
               Error);
  EXPECT_THROW(ops::cast(backend(), t, t), Error);
  HostTensor ids = i32({2}, {0, 1});
  EXPECT_THROW(ops::embedding(backend(), t, ids, t.slice(0, 2, 4)), Error);
  // Disjoint halves of one buffer are fine.
  HostTensor halves = f32({4, 2}, {1, 2, 3, 4, 0, 0, 0, 0});
  ops::embedding(backend(), halves.tensor().slice(0, 0, 2), i32({2}, {1, 0}), halves.tensor().slice(0, 2, 4));
  EXPECT_EQ(halves.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 3, 4, 1, 2}));
}

// bf16 activations are for backends that compute in them; the CPU, the reference, refuses them by name.
TEST(Bf16Activations, TheCpuBackendRefusesThemNamingItself) {
  const HostTensor x = narrow(DType::BF16, {2, 4}, random_values(8, 41));
  const HostTensor weight = filled({4}, 1.0f);
  auto message_of = [](const std::function<void()>& action) -> std::string {
    try {
      action();
    } catch (const Error& error) {
      return error.what();
    }
    return "no error";
  };
  const std::string norm =
      message_of([&] { ops::rms_norm(backend(), x, weight, 1e-6f, NormWeight::Plain, x); });
  EXPECT_NE(norm.find("rms_norm: x is bf16[2,4] cpu, but the cpu backend computes activations in f32 only"),
            std::string::npos)
      << norm;
  const std::string add = message_of([&] { ops::add(backend(), x, x, x); });
  EXPECT_NE(add.find("add: a is bf16[2,4] cpu"), std::string::npos) << add;
  HostTensor out_bf16(DType::BF16, {2, 2});
  const std::string linear = message_of([&] {
    ops::linear(backend(), filled({2, 4}, 1.0f), filled({2, 4}, 1.0f), std::nullopt, out_bf16);
  });
  EXPECT_NE(linear.find("linear: out is bf16[2,2] cpu, but the cpu backend"), std::string::npos) << linear;
}

}  // namespace
}  // namespace dlm
