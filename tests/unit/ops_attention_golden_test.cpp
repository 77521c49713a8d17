// Attention and vocabulary ops against references computed by torch in float64
// (tools/golden/ops_attention.py, which documents the file's layout). Bound for f32 results: max |got - ref|
// <= 1e-5 * max(1, max |ref|) per tensor; integer results (argmax, top-k indices) and top-k values (copies of
// logits) must match exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"
#include "engine/ops/attention.h"
#include "engine/ops/vocab.h"

namespace dlm {
namespace {

const std::string kGoldenPath = std::string(DLM_GOLDEN_DIR) + "/ops_attention.safetensors";
constexpr double kRelativeBound = 1e-5;

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream stream(list);
  for (std::string item; std::getline(stream, item, ',');) out.push_back(item);
  return out;
}

class OpsGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kGoldenPath)) {
      FAIL() << kGoldenPath << " is missing; generate it with `python3 tools/golden/ops_attention.py "
             << kGoldenPath << "` (needs torch and safetensors)";
    }
    file_ = std::make_unique<SafetensorsFile>(kGoldenPath);
  }

  const std::string& meta(const std::string& key) const {
    auto found = file_->metadata().find(key);
    if (found == file_->metadata().end()) throw Error(kGoldenPath + ": no metadata key " + key);
    return found->second;
  }

  Tensor tensor(const std::string& case_name, const std::string& arg) const {
    return file_->tensor(case_name + "." + arg);
  }

  std::unique_ptr<SafetensorsFile> file_;
  CpuBackend backend_{4};
};

std::vector<float> floats(const Tensor& t) {
  const float* data = t.data_as<float>();
  return std::vector<float>(data, data + t.numel());
}

std::vector<int32_t> ints(const Tensor& t) {
  const int32_t* data = t.data_as<int32_t>();
  return std::vector<int32_t>(data, data + t.numel());
}

// The bound of this file: max |got - want| <= 1e-5 * max(1, max |want|).
void expect_close(const std::string& what, const std::vector<float>& got, const Tensor& want_tensor) {
  const std::vector<float> want = floats(want_tensor);
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0, error = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(want[i])) << what << " reference " << i;
    scale = std::max(scale, std::abs(double(want[i])));
    const double diff = std::abs(double(got[i]) - want[i]);
    if (!(diff <= error)) {  // also catches a NaN in got
      error = diff;
      worst = i;
    }
  }
  EXPECT_LE(error, kRelativeBound * scale)
      << what << ": element " << worst << " is " << got[worst] << ", torch " << want[worst];
}

TEST_F(OpsGolden, Attention) {
  const std::vector<std::string> cases = split(meta("attention_cases"));
  const std::set<std::string> required{"bidirectional", "causal", "block_causal",    "sliding_window",
                                       "gqa",           "mqa",    "ragged",          "query_subset",
                                       "softcap",       "long",   "empty_visibility"};
  for (const auto& name : required) {
    EXPECT_NE(std::find(cases.begin(), cases.end(), name), cases.end()) << "golden file lacks case " << name;
  }
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const std::string kind = meta(name + ".visibility");
    const int64_t block_size = std::stoll(meta(name + ".block_size"));
    const int64_t window = std::stoll(meta(name + ".window"));
    Visibility visibility;
    if (kind == "bidirectional") {
      visibility = Visibility::bidirectional();
    } else if (kind == "causal") {
      visibility = Visibility::causal();
    } else if (kind == "block_causal") {
      visibility = Visibility::block_causal(block_size);
    } else if (kind == "sliding_window") {
      visibility = Visibility::sliding_window(window);
    } else {
      FAIL() << "unknown visibility " << kind;
    }
    const AttentionParams params{visibility, std::stof(meta(name + ".scale")),
                                 std::stof(meta(name + ".softcap"))};
    const AttentionBatch batch{tensor(name, "query_offsets"),
                               tensor(name, "key_offsets"),
                               tensor(name, "query_positions"),
                               tensor(name, "key_positions"),
                               {},
                               {}};
    const Tensor want = tensor(name, "out");
    HostTensor out(DType::F32, want.shape());
    ops::attention(backend_, tensor(name, "q"), tensor(name, "k"), tensor(name, "v"), batch, params, out);
    expect_close(name + ".out", out.to_vector<float>(), want);
  }
}

TEST_F(OpsGolden, Vocab) {
  const std::vector<std::string> cases = split(meta("vocab_cases"));
  EXPECT_NE(std::find(cases.begin(), cases.end(), "vocab_large"), cases.end())
      << "golden file lacks vocab_large";
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const Tensor logits = tensor(name, "logits");
    const Shape rows{logits.dim(0)};
    HostTensor argmax(DType::I32, rows), max_prob(DType::F32, rows), entropy(DType::F32, rows),
        margin(DType::F32, rows), plain_argmax(DType::I32, rows);
    ops::vocab_stats(backend_, logits, {argmax, max_prob, entropy, margin});
    ops::argmax(backend_, logits, plain_argmax);
    EXPECT_EQ(argmax.to_vector<int32_t>(), ints(tensor(name, "argmax")));
    EXPECT_EQ(plain_argmax.to_vector<int32_t>(), ints(tensor(name, "argmax")));
    expect_close(name + ".max_prob", max_prob.to_vector<float>(), tensor(name, "max_prob"));
    expect_close(name + ".entropy", entropy.to_vector<float>(), tensor(name, "entropy"));
    expect_close(name + ".margin", margin.to_vector<float>(), tensor(name, "margin"));

    const Tensor want_values = tensor(name, "topk_values");
    const int64_t k = want_values.dim(1);
    HostTensor values(DType::F32, want_values.shape()), indices(DType::I32, want_values.shape());
    ops::top_k(backend_, logits, k, values, indices);
    EXPECT_EQ(values.to_vector<float>(), floats(want_values));
    EXPECT_EQ(indices.to_vector<int32_t>(), ints(tensor(name, "topk_indices")));
  }
}

}  // namespace
}  // namespace dlm
