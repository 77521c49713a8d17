// CudaBackend::attention against CpuBackend, the reference: every visibility rule, GQA, ragged batches,
// positions in any order, odd head dims, NaN/Inf, scale and softcap, and guard bytes.
//
// Tolerances (each check says which it uses):
// - f32: |gpu - cpu| <= 1e-4 (1 + |cpu|). Outputs are convex combinations of V rows; the two backends differ
//   only in summation order (dots of <= 256 terms, sums over <= ~1000 keys), worth ~1e-6 on these N(0, 1)
//   inputs, while one key wrongly seen or hidden moves an output by ~1e-2 or more.
// - bf16 q/k/v: additionally 2^-9 max|v|: the tensor-core kernel rounds each probability to bf16 (relative
//   error <= 2^-9), which moves sum_j p_j v_j / sum_j p_j by at most 2^-9 max|v|; a bf16 output adds
//   2^-8 |cpu|.
// - NaN must match NaN, +-inf must match exactly, everywhere.
//
// These run dlm's kernels: the batches carry no host offsets, so the Auto backend never picks cuDNN for them.
// The cuDNN cases (finite bf16 data, the bf16 tolerance above: cuDNN also rounds P to bf16) run on a backend
// that requires cuDNN, with the host offsets given.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/buffer.h"
#include "tests/gpu/device_checks.h"

namespace dlm {
namespace {

using namespace gpu_test;

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
  bool cudnn = false;       // on gpu_test::cudnn_gpu(), with the batch's host offsets
  bool split_keys = false;  // on gpu_test::split_gpu(), else gpu_test::unsplit_gpu()
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
    if (split_keys) s += " split keys";
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
  CudaBackend& backend = s.cudnn        ? gpu_test::cudnn_gpu()
                         : s.split_keys ? gpu_test::split_gpu()
                                        : gpu_test::unsplit_gpu();
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

// dlm's kernels are checked with and without splitting keys across blocks (which only calls that make few
// blocks take).
void check_attention(const AttentionSetup& s, const AttentionData& d) {
  SCOPED_TRACE(s.str());
  const std::vector<float> want = cpu_attention(s, d);
  const std::vector<double> tolerance = attention_tolerance(s, d, want);
  expect_close(gpu_attention(s, d), want, tolerance, s.str());
  if (s.cudnn) return;
  AttentionSetup split = s;
  split.split_keys = true;
  expect_close(gpu_attention(split, d), want, tolerance, split.str());
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

// Decoding steps: a query row or a few per sequence against caches of thousands of keys, the calls that split
// their keys. Sequences of unequal length (a short one has fewer key tiles than the call has splits, so some
// shares are empty), every visibility (a narrow window hides whole shares), GQA and MQA, both kernels.
TEST(CudaAttention, DecodingRowsAgainstLongCachesMatchCpu) {
  DLM_SKIP_WITHOUT_GPU();
  uint32_t seed = 1200;
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Visibility& visibility : all_visibilities()) {
      for (const auto& [hq, hkv] : {std::pair<int64_t, int64_t>{8, 2}, std::pair<int64_t, int64_t>{4, 1}}) {
        AttentionSetup s;
        s.query_lengths = {1, 1, 3};
        s.key_lengths = {2100, 40, 1500};
        s.hq = hq;
        s.hkv = hkv;
        s.d = s.dv = 128;
        s.visibility = visibility;
        s.dtype = dtype;
        s.out_dtype = dtype;
        s.seed = seed++;
        check_attention(s);
      }
    }
  }
}

// The split plan: calls whose query blocks leave most of the device idle split their keys (about two blocks
// per multiprocessor, at most 16 shares, none without a key tile to take); prefill-sized calls, calls without
// keys to share and calls that give no multiprocessor count do not. Host arithmetic: runs without a device.
TEST(CudaAttentionSplits, DecodingStepsSplitAndPrefillsDoNot) {
  cuda::AttentionProblem decode;
  decode.qkv_dtype = decode.out_dtype = DType::BF16;
  decode.sequences = 1;
  decode.query_rows = 1;
  decode.key_rows = 384;
  decode.query_heads = 28;
  decode.kv_heads = 4;
  decode.head_dim = decode.value_dim = 128;
  decode.multiprocessors = 132;
  // 4 blocks (one per kv head) and 6 key tiles: one tile per share.
  EXPECT_EQ(cuda::attention_key_splits(decode), 6);
  EXPECT_EQ(cuda::attention_split_scratch_bytes(decode), size_t{6} * 28 * (16 + 4 * 128));
  decode.key_rows = 4096;  // 64 tiles: 2 * 132 / 4 = 66 wanted, capped at 16
  EXPECT_EQ(cuda::attention_key_splits(decode), 16);

  cuda::AttentionProblem batch = decode;  // 32 sequences of one row: 32 x 4 blocks of 132, so 3 shares
  batch.sequences = 32;
  batch.query_rows = 32;
  batch.key_rows = 32 * 384;
  EXPECT_EQ(cuda::attention_key_splits(batch), 3);

  cuda::AttentionProblem prefill = decode;  // 384 rows of 32 heads: 6 x 32 blocks, enough
  prefill.query_rows = 384;
  prefill.key_rows = 384;
  prefill.query_heads = prefill.kv_heads = 32;
  EXPECT_EQ(cuda::attention_key_splits(prefill), 1);
  EXPECT_EQ(cuda::attention_split_scratch_bytes(prefill), 0u);

  cuda::AttentionProblem short_cache = decode;  // one key tile: nothing to share
  short_cache.key_rows = 64;
  EXPECT_EQ(cuda::attention_key_splits(short_cache), 1);
  cuda::AttentionProblem unknown_device = decode;
  unknown_device.multiprocessors = 0;
  EXPECT_EQ(cuda::attention_key_splits(unknown_device), 1);
  cuda::AttentionProblem unsupported = decode;
  unsupported.head_dim = 512;
  EXPECT_EQ(cuda::attention_key_splits(unsupported), 1);
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
    for (const auto& [visibility, split_keys] :
         {std::pair{Visibility::causal(), false}, std::pair{Visibility::sliding_window(20), false},
          std::pair{Visibility::causal(), true}, std::pair{Visibility::sliding_window(20), true}}) {
      s.visibility = visibility;
      s.split_keys = split_keys;
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

// cuDNN's runs keep the length arrays they derive from the offsets while the next call's offsets are the
// same (the layers of a forward); offsets rewritten in place, a recording and a replay each make them
// derived again.
TEST(CudaAttention, CudnnDerivesLengthsAgainWhereTheOffsetsChange) {
  DLM_SKIP_WITHOUT_GPU();
  static CudaBackend recording(0, CudaOptions{CudaAttention::Cudnn, true});
  AttentionSetup a;
  a.query_lengths = {32, 32};
  a.key_lengths = {100, 200};
  a.hq = 8;
  a.hkv = 2;
  a.d = a.dv = 64;
  a.visibility = Visibility::bidirectional();
  a.dtype = a.out_dtype = DType::BF16;
  a.cudnn = true;
  a.seed = 1100;
  AttentionSetup b = a;  // the same totals (64 queries, 300 keys), so the same buffers hold either
  b.query_lengths = {10, 54};
  b.key_lengths = {150, 150};
  b.seed = 1101;
  const AttentionData da = attention_data(a), db = attention_data(b);
  const std::vector<float> want_a = cpu_attention(a, da), want_b = cpu_attention(b, db);

  const auto device = [](DType dtype, Shape shape) {
    DeviceTensor t;
    t.buffer = gpu().allocate(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
    t.tensor = t.buffer.view(dtype, shape);
    return t;
  };
  const DeviceTensor q = device(DType::BF16, {64, a.hq, a.d}), k = device(DType::BF16, {300, a.hkv, a.d}),
                     v = device(DType::BF16, {300, a.hkv, a.dv}), out = device(DType::BF16, {64, a.hq, a.dv});
  const DeviceTensor qo = device(DType::I32, {3}), ko = device(DType::I32, {3}),
                     qp = device(DType::I32, {64}), kp = device(DType::I32, {300});
  const auto load = [&](const AttentionData& d) {
    gpu().copy(host_tensor(DType::BF16, {64, a.hq, a.d}, d.q).tensor(), q.tensor);
    gpu().copy(host_tensor(DType::BF16, {300, a.hkv, a.d}, d.k).tensor(), k.tensor);
    gpu().copy(host_tensor(DType::BF16, {300, a.hkv, a.dv}, d.v).tensor(), v.tensor);
    for (const auto& [values, into] :
         {std::pair{&d.query_offsets, &qo}, std::pair{&d.key_offsets, &ko},
          std::pair{&d.query_positions, &qp}, std::pair{&d.key_positions, &kp}}) {
      gpu().copy(i32_tensor(*values).tensor(), into->tensor);
    }
    gpu().synchronize();
  };
  const auto queue = [&](const AttentionData& d) {
    recording.attention(
        q.tensor, k.tensor, v.tensor,
        AttentionBatch{qo.tensor, ko.tensor, qp.tensor, kp.tensor, d.query_offsets, d.key_offsets},
        params_of(a), out.tensor);
  };
  const auto check = [&](const AttentionSetup& s, const AttentionData& d, const std::vector<float>& want,
                         const std::string& what) {
    recording.synchronize();
    expect_close(values_of(to_host(out.tensor)), want, attention_tolerance(s, d, want), what);
  };

  load(da);
  queue(da);
  check(a, da, want_a, "a");
  load(db);
  queue(db);
  check(b, db, want_b, "b, offsets rewritten in place");
  load(da);
  queue(da);
  check(a, da, want_a, "a again");

  recording.begin_recording();
  queue(da);  // a's offsets as the last run's: the recording must still derive its own lengths
  const std::unique_ptr<RecordedWork> work = recording.end_recording();
  ASSERT_NE(work, nullptr);
  load(db);
  queue(db);
  check(b, db, want_b, "b after the recording");
  load(da);
  recording.replay(*work);
  check(a, da, want_a, "a, replayed after b's run");
  load(db);
  queue(db);
  check(b, db, want_b, "b after the replay");
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
