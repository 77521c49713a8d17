#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>

#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/core/rng.h"
#include "engine/core/thread_pool.h"
#include "engine/core/utf8.h"

namespace dlm {
namespace {

TEST(DType, SizesAndSafetensorsNames) {
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_from_safetensors("F8_E4M3"), DType::F8E4M3);
  EXPECT_EQ(dtype_from_safetensors("BOOL"), std::nullopt);
  EXPECT_EQ(safetensors_dtype_name(DType::BF16), "BF16");
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  // 1 + 3 * 2^-8 is halfway too: ties go up to the even 1 + 2^-6.
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Half, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65536.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(5.960464477539063e-08f), 0x0001);    // smallest subnormal
  EXPECT_EQ(f32_to_f16(2.98023223876953125e-08f), 0x0000);  // half of it: ties to even (zero)
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), 5.960464477539063e-08f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0xfc00)));
}

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    uint16_t half = static_cast<uint16_t>(bits);
    if ((half & 0x7c00) == 0x7c00) continue;  // inf/NaN
    ASSERT_EQ(f32_to_f16(f16_to_f32(half)), half) << bits;
  }
}

TEST(Half, F8E4M3KnownValues) {
  EXPECT_EQ(f8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), 0.001953125f);  // 2^-9, smallest subnormal
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7f)));
}

// Known-answer vectors published with Random123 (kat_vectors, philox4x32_10).
TEST(Rng, Philox4x32MatchesRandom123) {
  Philox4x32 zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  Philox4x32 ones = philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  EXPECT_EQ(ones.v[0], 0x408f276du);
  EXPECT_EQ(ones.v[1], 0x41c83b0eu);
  EXPECT_EQ(ones.v[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.v[3], 0x6d5451fdu);
  Philox4x32 pi = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Rng, StreamUniformsAreInRangeAndRoughlyUniform) {
  RngStream stream{42};
  constexpr int kDraws = 20000;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    double u = stream.uniform_double_open(3, i);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    float f = stream.uniform_float(3, i);
    ASSERT_GE(f, 0.0f);
    ASSERT_LT(f, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / kDraws, 0.5, 0.01);  // 7 standard errors
  EXPECT_NE(RngStream{1}.draw(0, 0).v[0], RngStream{2}.draw(0, 0).v[0]);
}

TEST(Tensor, JoinAdjacentStacksMatricesStoredBackToBack) {
  std::vector<float> storage(5 * 4);
  const Tensor all(storage.data(), DType::F32, Shape{5, 4});
  const Tensor first = all.slice(0, 0, 2), second = all.slice(0, 2, 5);
  const Tensor joined = join_adjacent(first, second);
  ASSERT_FALSE(joined.empty());
  EXPECT_EQ(joined.data(), storage.data());
  EXPECT_EQ(joined.shape(), (Shape{5, 4}));
  EXPECT_TRUE(join_adjacent(second, first).empty());                                   // in the wrong order
  EXPECT_TRUE(join_adjacent(all.slice(0, 0, 1), second).empty());                      // a row between them
  EXPECT_TRUE(join_adjacent(first, all.slice(0, 2, 5).reshape(Shape{6, 2})).empty());  // other row width
  const Tensor as_i32(storage.data() + 8, DType::I32, Shape{3, 4});
  EXPECT_TRUE(join_adjacent(first, as_i32).empty());  // another dtype
  const Tensor column_major(storage.data() + 8, DType::F32, Shape{3, 4}, Shape{1, 3}, Device{});
  EXPECT_TRUE(join_adjacent(first, column_major).empty());  // not contiguous
  EXPECT_TRUE(join_adjacent(Tensor(), second).empty());
}

TEST(Tensor, ViewsShareStorage) {
  HostTensor owner = HostTensor::from<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor t = owner.tensor();
  EXPECT_TRUE(t.is_contiguous());
  Tensor row = t.slice(0, 1, 2);
  EXPECT_EQ(row.data_as<float>()[0], 3.0f);
  Tensor column = t.slice(1, 2, 3);
  EXPECT_FALSE(column.is_contiguous());
  EXPECT_EQ(column.stride(0), 3);
  Tensor transposed = t.transpose(0, 1);
  EXPECT_EQ(transposed.dim(0), 3);
  EXPECT_EQ(transposed.stride(1), 3);
  EXPECT_EQ(t.reshape({3, 2}).dim(-1), 2);
  EXPECT_THROW(t.reshape({4, 2}), Error);
  EXPECT_THROW(transposed.reshape({6}), Error);
  EXPECT_THROW(t.slice(0, 1, 3), Error);
  EXPECT_THROW(t.data_as<int32_t>(), Error);
  EXPECT_EQ(t.describe(), "f32[2,3] cpu");
}

TEST(Buffer, ViewOutOfRangeIsRejected) {
  Buffer buffer = Buffer::host(16);
  EXPECT_NO_THROW(buffer.view(DType::F32, {4}));
  EXPECT_THROW(buffer.view(DType::F32, {5}), Error);
  EXPECT_THROW(buffer.view(DType::F32, {2}, 12), Error);
  Buffer moved = std::move(buffer);
  EXPECT_EQ(moved.bytes(), 16u);
  EXPECT_EQ(buffer.data(), nullptr);
}

TEST(ThreadPool, CoversEveryIndexOnceAndPropagatesErrors) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  for (int round = 0; round < 20; ++round) {
    pool.parallel_for(1000, 7, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
    });
  }
  for (auto& hit : hits) ASSERT_EQ(hit.load(), 20);
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [](int64_t begin, int64_t) {
                                   if (begin > 50) throw Error("boom");
                                 }),
               Error);
}

TEST(Utf8, AbbreviationKeepsWholeCharactersAndMarksTheCut) {
  EXPECT_EQ(abbreviate_utf8("", 3), "");
  EXPECT_EQ(abbreviate_utf8("abc", 3), "abc");
  EXPECT_EQ(abbreviate_utf8("abcd", 3), "abc...");
  EXPECT_EQ(abbreviate_utf8("\u00e9\u00e9\u00e9\u00e9", 2), "\u00e9\u00e9...");  // two bytes each
  EXPECT_EQ(abbreviate_utf8("a\U0001F600b", 2), "a\U0001F600...");               // four bytes
  EXPECT_EQ(abbreviate_utf8("\xFF\xFEz", 2), "\xFF\xFE...");                     // an ill-formed byte is one
  EXPECT_EQ(abbreviate_utf8("ab", 0), "...");
}

}  // namespace
}  // namespace dlm
