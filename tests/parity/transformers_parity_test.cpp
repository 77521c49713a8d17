// Backbone parity with transformers 5.17: every supported checkpoint format, loaded from a real model
// directory, reproduces the logits transformers computed for the same weights (tools/parity/
// transformers_parity.py writes the models and the references into tests/golden/parity).
//
// Metric: max |ours - reference| over a case's logits, relative to the case's logit scale max |reference|;
// the bound is 1e-4 of that scale (f32 activations, f32 or bf16 weights widened exactly).
//
// The "grouped" cases load a copy of a checkpoint that stores each layer's q, k and v projections (matrices,
// then biases) and its gate and up projections back to back, as a device copy of the weights does: the
// transformer then runs each group as one product, and must still reproduce the references.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include "backbones/load_model.h"
#include "backbones/transformer.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/io/safetensors.h"

namespace dlm {
namespace {

constexpr double kRelativeBound = 1e-4;
constexpr int64_t kBlock = 4;  // BLOCK in the script

const std::string kParityDir = std::string(DLM_GOLDEN_DIR) + "/parity";

struct Format {
  const char* model;     // tests/golden/parity/models/<model>
  const char* base;      // whose references (<base>_logits.safetensors) its weights must reproduce
  bool grouped = false;  // loaded from a copy whose projection groups lie back to back
};

const Format kFormats[] = {
    {"llama", "llama"},        {"qwen2", "qwen2"},       {"qwen3", "qwen3"},
    {"llada", "llama"},        {"dream", "qwen2"},       {"sdar", "qwen3"},
    {"fast_dllm_v2", "qwen2"}, {"llama", "llama", true}, {"qwen2", "qwen2", true},
};

// Where a projection's tensor goes in a grouped copy of a layer: q, k, v matrices, then their biases, then
// the gate and up matrices; everything else after them.
int grouped_rank(const std::string& name) {
  static const char* const kOrder[] = {"q_proj.weight",    "k_proj.weight", "v_proj.weight",
                                       "q_proj.bias",      "k_proj.bias",   "v_proj.bias",
                                       "gate_proj.weight", "up_proj.weight"};
  for (int rank = 0; rank < static_cast<int>(std::size(kOrder)); ++rank) {
    if (name.ends_with(kOrder[rank])) return rank;
  }
  return static_cast<int>(std::size(kOrder));
}

// A copy of tests/golden/parity/models/<model> whose checkpoint stores its tensors layer by layer in
// grouped_rank order, in a directory of its own under the test's temporary directory (the test cases run as
// processes side by side).
std::string grouped_model(const std::string& model) {
  namespace fs = std::filesystem;
  const fs::path source = fs::path(kParityDir) / "models" / model;
  std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::ranges::replace(test, '/', '_');
  const fs::path copy =
      fs::path(::testing::TempDir()) / fmt::format("grouped_{}_{}_{}", model, ::getpid(), test);
  fs::create_directories(copy);
  for (const fs::directory_entry& file : fs::directory_iterator(source)) {
    if (file.path().filename() != "model.safetensors") {
      fs::copy_file(file.path(), copy / file.path().filename(), fs::copy_options::overwrite_existing);
    }
  }
  const SafetensorsFile checkpoint((source / "model.safetensors").string());
  const std::regex layer_of(R"(\.layers\.(\d+)\.)");
  const auto key = [&](const TensorEntry& entry) {
    std::smatch match;
    const int layer = std::regex_search(entry.name, match, layer_of) ? std::stoi(match[1].str()) : -1;
    return std::tuple(layer, grouped_rank(entry.name), entry.name);
  };
  std::vector<TensorEntry> entries = checkpoint.entries();
  std::ranges::sort(entries, [&](const TensorEntry& a, const TensorEntry& b) { return key(a) < key(b); });
  std::vector<NamedTensor> tensors;
  for (const TensorEntry& entry : entries) tensors.push_back({entry.name, checkpoint.tensor(entry.name)});
  write_safetensors((copy / "model.safetensors").string(), tensors, checkpoint.metadata());
  return copy.string();
}

std::string model_dir(const Format& format) {
  return format.grouped ? grouped_model(format.model) : kParityDir + "/models/" + format.model;
}

std::vector<int32_t> ints(const SafetensorsFile& golden, const std::string& name) {
  const Tensor t = golden.tensor(name);
  const int32_t* data = t.data_as<int32_t>();
  return {data, data + t.numel()};
}

std::vector<int32_t> iota_positions(int32_t first, size_t count) {
  std::vector<int32_t> positions(count);
  for (size_t i = 0; i < count; ++i) positions[i] = first + static_cast<int32_t>(i);
  return positions;
}

class TransformersParity : public ::testing::TestWithParam<Format> {
 protected:
  TransformersParity()
      : dir_(model_dir(GetParam())),
        model_(load_model(backend_, dir_)),
        golden_(kParityDir + "/" + GetParam().base + "_logits.safetensors") {}
  // A grouped copy goes with the test; the loaded model keeps its mapping of the checkpoint.
  ~TransformersParity() override {
    if (GetParam().grouped) std::filesystem::remove_all(dir_);
  }

  // Compares `got` [N, V] with the reference tensor `name` (rows [first_row, first_row + N) of it).
  void expect_close(const Tensor& got, const std::string& name, int64_t first_row = 0) {
    const Tensor want = golden_.tensor(name);
    ASSERT_EQ(got.dim(1), want.dim(1)) << name;
    ASSERT_LE(first_row + got.dim(0), want.dim(0)) << name;
    const float* a = got.data_as<float>();
    const float* b = want.data_as<float>() + first_row * want.dim(1);
    const int64_t count = got.numel();
    double scale = 0.0, error = 0.0;
    for (int64_t i = 0; i < count; ++i) {
      scale = std::max(scale, std::abs(static_cast<double>(b[i])));
      error = std::max(error, std::abs(static_cast<double>(a[i]) - b[i]));
    }
    const double relative = error / std::max(1.0, scale);
    RecordProperty(name, fmt::format("{:.3g}", relative));
    EXPECT_LE(relative, kRelativeBound) << name << ": max abs error " << error << " at logit scale " << scale;
  }

  ForwardResult run(ForwardBatch& batch, bool all_rows = true) {
    if (all_rows) {
      batch.logit_rows.clear();
      for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
    }
    return model_.backbone->forward(batch);
  }

  CpuBackend backend_{2};
  std::string dir_;
  LoadedModel model_;
  SafetensorsFile golden_;
};

TEST_P(TransformersParity, FullForwardCausalWithHiddenStates) {
  ForwardBatch batch;
  batch.add_sequence(ints(golden_, "causal.input_ids"));
  batch.visibility = Visibility::causal();
  std::vector<std::string> seen;
  batch.observer = [&](std::string_view name, int64_t layer, const Tensor& value) {
    // transformers' hidden_states[k]: the embeddings, then the output of layer k - 1.
    if (name == "embeddings") expect_close(value, "causal.hidden.0");
    if (name == "layer_output" && golden_.contains(fmt::format("causal.hidden.{}", layer + 1)))
      expect_close(value, fmt::format("causal.hidden.{}", layer + 1));
    seen.emplace_back(name);
  };
  expect_close(run(batch).logits, "causal.logits");
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "layer_output"), 2);
}

TEST_P(TransformersParity, FullForwardBidirectional) {
  ForwardBatch batch;
  batch.add_sequence(ints(golden_, "bidirectional.input_ids"));
  batch.visibility = Visibility::bidirectional();
  expect_close(run(batch).logits, "bidirectional.logits");
}

TEST_P(TransformersParity, FullForwardBlockCausal) {
  ForwardBatch batch;
  batch.add_sequence(ints(golden_, "block_causal.input_ids"));
  batch.visibility = Visibility::block_causal(kBlock);
  expect_close(run(batch).logits, "block_causal.logits");
}

TEST_P(TransformersParity, RaggedBatchOfPromptsOfDifferentLengths) {
  ForwardBatch batch;
  for (int b = 0; b < 3; ++b) batch.add_sequence(ints(golden_, fmt::format("batch.input_ids.{}", b)));
  batch.visibility = Visibility::causal();
  const Tensor logits = run(batch).logits;
  for (int64_t b = 0; b < 3; ++b) {
    expect_close(logits.slice(0, batch.offsets[b], batch.offsets[b + 1]), fmt::format("batch.logits.{}", b));
  }
}

TEST_P(TransformersParity, CachedContinuationAllAtOnceAndTokenByToken) {
  const std::vector<int32_t> prompt = ints(golden_, "cached.prompt_ids");
  const std::vector<int32_t> continuation = ints(golden_, "cached.continuation_ids");
  const auto length = static_cast<int32_t>(prompt.size());
  for (bool token_by_token : {false, true}) {
    std::unique_ptr<SequenceCache> cache = model_.backbone->new_cache(length + 3);
    ForwardBatch batch;
    batch.visibility = Visibility::causal();
    batch.add_sequence(prompt);
    batch.caches = {{cache.get(), CachePolicy::Commit}};
    run(batch, false);  // no logits: the prompt only fills the cache
    ASSERT_EQ(cache->length(), length);
    if (!token_by_token) {
      batch.clear();
      batch.add_sequence(continuation, length);
      batch.caches = {{cache.get(), CachePolicy::Commit}};
      expect_close(run(batch).logits, "cached.logits");
      continue;
    }
    for (size_t i = 0; i < continuation.size(); ++i) {
      batch.clear();
      batch.add_sequence({continuation[i]}, length + static_cast<int32_t>(i));
      batch.caches = {{cache.get(), CachePolicy::Commit}};
      expect_close(run(batch).logits, "cached.logits", static_cast<int64_t>(i));
    }
    EXPECT_EQ(cache->length(), length + 3);
  }
}

TEST_P(TransformersParity, BlockReadsTheCachedPrefix) {
  const std::vector<int32_t> prefix = ints(golden_, "block_cached.prefix_ids");
  const std::vector<int32_t> block = ints(golden_, "block_cached.block_ids");
  const auto length = static_cast<int32_t>(prefix.size());
  for (CachePolicy policy : {CachePolicy::Read, CachePolicy::Commit}) {
    std::unique_ptr<SequenceCache> cache = model_.backbone->new_cache(length + kBlock);
    ForwardBatch batch;
    batch.visibility = Visibility::block_causal(kBlock);
    batch.add_sequence(prefix);
    batch.caches = {{cache.get(), CachePolicy::Commit}};
    run(batch, false);
    batch.clear();
    batch.add_sequence(block, iota_positions(length, block.size()));
    batch.caches = {{cache.get(), policy}};
    expect_close(run(batch).logits, "block_cached.logits");
    EXPECT_EQ(cache->length(), policy == CachePolicy::Read ? length : length + kBlock);
  }
}

TEST_P(TransformersParity, GroupedCopiesRunEachGroupAsOneProduct) {
  const auto* transformer = dynamic_cast<const TransformerModel*>(model_.backbone.get());
  ASSERT_NE(transformer, nullptr);
  const TransformerModel::JoinedProjections joined = transformer->joined_projections();
  if (GetParam().grouped) {
    EXPECT_TRUE(joined.qkv);
    EXPECT_TRUE(joined.gate_up);
  } else {
    EXPECT_FALSE(joined.qkv) << "transformers' files list k_proj, o_proj, q_proj, v_proj";
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, TransformersParity, ::testing::ValuesIn(kFormats), [](const auto& info) {
  return std::string(info.param.model) + (info.param.grouped ? "_grouped" : "");
});

}  // namespace
}  // namespace dlm
