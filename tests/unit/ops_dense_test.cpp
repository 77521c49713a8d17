// The CPU backend's cast, linear and embedding ops through their front-ends, and the rules every op keeps
// (no overlapping operands, no bf16 activations on the CPU). Expected values are worked out by hand (the
// numbers in comments) or, for the large odd-shaped cases, by a plain double-precision loop written here.
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
#include "tests/unit/dense_op_checks.h"

namespace dlm {
namespace {

using namespace dense_test;

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
