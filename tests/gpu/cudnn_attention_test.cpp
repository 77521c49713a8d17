// The host half of cuDNN's attention (engine/backend/cuda/cudnn_attention.h), which needs no device: every
// tensor and operation descriptor of the graph is accepted and finalized by the installed cuDNN (a wrong
// attribute type, count or value fails here), plans are sized from the longest sequence, and every call
// cuDNN cannot take is named. The GPU half (results against the CPU) is in cuda_attention_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/cuda/cudnn_attention.h"

namespace dlm::cuda {
namespace {

TEST(CudnnAttentionGraph, EveryDescriptorIsFinalizedForDlmsShapes) {
  const SdpaShape shapes[] = {
      {1, 512, 512, 32, 32, 128, 128},  // LLaDA-8B, 384 rows rounded up
      {32, 64, 512, 32, 32, 128, 128},  // dual-cache blocks of 32 against 384 keys, batch 32
      {3, 64, 256, 8, 2, 64, 64},       // GQA
      {2, 128, 128, 4, 4, 256, 256},    // the largest head
      {5, 64, 64, 6, 3, 64, 128},       // value_dim != head_dim
  };
  for (const SdpaShape& shape : shapes) {
    SCOPED_TRACE(::testing::Message()
                 << "sequences " << shape.sequences << ", heads " << shape.query_heads << "/"
                 << shape.kv_heads << ", dims " << shape.head_dim << "/" << shape.value_dim);
    SdpaOperations graph;
    ASSERT_NO_THROW(graph = build_sdpa_operations(shape));
    // Two products, the scale, six mask steps, max, sub, exp, sum, the statistics' log and add, and the
    // division.
    EXPECT_EQ(graph.operations.size(), 16u);
    for (const CudnnDescriptor& d : graph.operations) EXPECT_NE(d.get(), nullptr);
  }
}

AttentionProblem bf16_problem(int64_t query_rows, int64_t key_rows) {
  AttentionProblem p;
  alignas(16) static char storage[64];
  p.q = p.k = p.v = p.out = storage;
  p.qkv_dtype = p.out_dtype = DType::BF16;
  p.sequences = 2;
  p.query_rows = query_rows;
  p.key_rows = key_rows;
  p.query_heads = 8;
  p.kv_heads = 2;
  p.head_dim = p.value_dim = 64;
  p.scale = 0.125f;
  p.visibility = Visibility::bidirectional();
  return p;
}

TEST(CudnnAttentionPlan, TheLongestSequenceRoundedUpToAPowerOfTwoOfAtLeast64) {
  const std::vector<int32_t> query_offsets{0, 30, 130}, key_offsets{0, 300, 400};
  const SdpaShape shape = plan_shape(bf16_problem(130, 400), query_offsets, key_offsets);
  EXPECT_EQ(shape.sequences, 2);
  EXPECT_EQ(shape.max_queries, 128);  // 100 rows
  EXPECT_EQ(shape.max_keys, 512);     // 300 rows
  EXPECT_EQ(shape.query_heads, 8);
  EXPECT_EQ(shape.kv_heads, 2);
  const std::vector<int32_t> small{0, 3, 5};
  const SdpaShape small_shape = plan_shape(bf16_problem(5, 5), small, small);
  EXPECT_EQ(small_shape.max_queries, 64);
  EXPECT_EQ(small_shape.max_keys, 64);
}

TEST(CudnnAttentionPlan, NamesEveryCallCuDnnCannotTake) {
  const std::vector<int32_t> offsets{0, 3, 5};
  const auto why = [&](const AttentionProblem& p, int sm_major = 9) {
    return sdpa_unsupported(p, offsets, offsets, sm_major);
  };
  EXPECT_EQ(why(bf16_problem(5, 5)), "");

  AttentionProblem f32 = bf16_problem(5, 5);
  f32.out_dtype = DType::F32;
  EXPECT_EQ(why(f32), "q, k, v and out are not all bf16");
  AttentionProblem causal = bf16_problem(5, 5);
  causal.visibility = Visibility::causal();
  EXPECT_EQ(why(causal), "the visibility is not bidirectional");
  AttentionProblem softcap = bf16_problem(5, 5);
  softcap.softcap = 30.0f;
  EXPECT_EQ(why(softcap), "a softcap is set");
  AttentionProblem odd_head = bf16_problem(5, 5);
  odd_head.head_dim = 60;
  EXPECT_NE(why(odd_head).find("multiples of 8"), std::string::npos);
  AttentionProblem wide_head = bf16_problem(5, 5);
  wide_head.value_dim = 264;
  EXPECT_NE(why(wide_head).find("up to 256"), std::string::npos);
  AttentionProblem misaligned = bf16_problem(5, 5);
  misaligned.k = static_cast<const char*>(misaligned.k) + 2;
  EXPECT_EQ(why(misaligned), "a tensor is not 16-byte aligned");
  AttentionProblem huge = bf16_problem(5, int64_t{1} << 24);
  EXPECT_EQ(why(huge), "element offsets exceed i32");
  if (cudnnGetVersion() < 91801) {
    EXPECT_NE(why(bf16_problem(5, 5), 8).find("compute capability 9.0"), std::string::npos);
  }

  const AttentionProblem fine = bf16_problem(5, 5);
  EXPECT_EQ(sdpa_unsupported(fine, {}, {}, 9), "the batch has no host copy of its offsets");
  const std::vector<int32_t> keyless{0, 3, 3};
  EXPECT_EQ(sdpa_unsupported(fine, offsets, keyless, 9), "sequence 1 has queries but no keys");
  // A sequence with neither queries nor keys is fine.
  const std::vector<int32_t> empty_second{0, 5, 5};
  EXPECT_EQ(sdpa_unsupported(fine, empty_second, empty_second, 9), "");
}

}  // namespace
}  // namespace dlm::cuda
