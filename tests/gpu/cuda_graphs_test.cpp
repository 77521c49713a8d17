// Forwards replayed as CUDA graphs (CudaOptions::graphs, backbones/forward_recorder.h) against the same
// forwards queued op by op on a second backend: the logits of every call are the same bits, whether the call
// was queued directly, recorded or replayed, for the steps that repeat (full-recompute denoising, a
// dual-cache block's steps, with new token ids each step) and for those that never do (token-by-token
// decoding). Each scenario also says how its forwards were queued, so a recorder that never replays fails.
// Without a device every test skips.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backbones/load_model.h"
#include "backbones/transformer.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"
#include "tests/gpu/forward_batches.h"
#include "tests/gpu/shared_gpu.h"

namespace dlm {
namespace {

using gpu_test::all_rows;
using gpu_test::random_ids;

const std::string kModelsDir = std::string(DLM_GOLDEN_DIR) + "/parity/models";

CudaBackend& graphs_gpu() {
  static CudaBackend backend(0, CudaOptions{CudaAttention::Auto, true});
  return backend;
}

std::vector<float> logits_of(Backend& backend, const ForwardResult& result) {
  HostTensor host(result.logits.dtype(), result.logits.shape());
  backend.copy(result.logits, host);
  return host.to_vector<float>();
}

// The calls of a scenario on one backbone; returns each call's logits.
using Scenario = std::function<std::vector<std::vector<float>>(Backbone& model, Backend& backend)>;

struct Expected {
  int64_t recorded, replayed;
};

class CudaGraphs : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const cuda::DeviceProbe probe = cuda::probe_devices();
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  }

  // Runs `scenario` on a fresh model on each backend: the same bits from both, and the recorder's counts.
  void expect_same_bits(const std::string& what, const Scenario& scenario, Expected expected) {
    SCOPED_TRACE(what);
    const std::string dir = kModelsDir + "/" + GetParam();
    LoadedModel direct = load_model(gpu_test::gpu(), dir);
    LoadedModel recorded = load_model(graphs_gpu(), dir);
    const auto got = scenario(*recorded.backbone, graphs_gpu());
    const auto want = scenario(*direct.backbone, gpu_test::gpu());
    ASSERT_EQ(got.size(), want.size());
    for (size_t call = 0; call < want.size(); ++call) {
      ASSERT_EQ(got[call].size(), want[call].size()) << "call " << call;
      EXPECT_EQ(std::memcmp(got[call].data(), want[call].data(), want[call].size() * sizeof(float)), 0)
          << "call " << call << " differs";
    }
    const auto* model = dynamic_cast<const TransformerModel*>(recorded.backbone.get());
    ASSERT_NE(model, nullptr);
    const ForwardRecorder::Counts& counts = model->recording_counts();
    EXPECT_EQ(counts.refused, 0);
    EXPECT_EQ(counts.recorded, expected.recorded);
    EXPECT_EQ(counts.replayed, expected.replayed);
  }
};

TEST_P(CudaGraphs, FullRecomputeStepsReplayWithNewIdsAndFewerRows) {
  // Six steps over one 24-token canvas, with logits for fewer rows each step (the still-masked positions of
  // a schedule): the first step queued directly, the second recorded, four replays.
  expect_same_bits(
      "full recompute",
      [](Backbone& model, Backend& backend) {
        std::vector<std::vector<float>> outputs;
        for (int32_t step = 0; step < 6; ++step) {
          ForwardBatch batch;
          batch.visibility = Visibility::bidirectional();
          batch.add_sequence(random_ids(24, model.vocab_size(), 100 + static_cast<uint32_t>(step)));
          for (int32_t row = 3 * step; row < 24; ++row) batch.logit_rows.push_back(row);
          outputs.push_back(logits_of(backend, model.forward(batch)));
        }
        return outputs;
      },
      {1, 4});
}

TEST_P(CudaGraphs, DualCacheBlockStepsReplayAndTheNextBlockRecordsAgain) {
  // The canvas committed once, then two blocks of four steps replacing their rows: per block one direct
  // step, one recorded, two replays.
  expect_same_bits("dual cache",
                   [](Backbone& model, Backend& backend) {
                     std::vector<std::vector<float>> outputs;
                     std::unique_ptr<SequenceCache> cache = model.new_cache(32);
                     ForwardBatch batch;
                     batch.visibility = Visibility::bidirectional();
                     batch.add_sequence(random_ids(32, model.vocab_size(), 200));
                     batch.caches = {{cache.get(), CachePolicy::Commit}};
                     model.forward(batch);
                     for (int32_t block_start : {16, 24}) {
                       for (uint32_t step = 0; step < 4; ++step) {
                         batch.clear();
                         batch.add_sequence(random_ids(8, model.vocab_size(), 300 + step + block_start),
                                            block_start);
                         batch.caches = {{cache.get(), CachePolicy::Replace}};
                         all_rows(batch);
                         outputs.push_back(logits_of(backend, model.forward(batch)));
                       }
                     }
                     return outputs;
                   },
                   {2, 4});
}

TEST_P(CudaGraphs, TokenByTokenDecodingNeverRepeatsAShape) {
  expect_same_bits("token by token",
                   [](Backbone& model, Backend& backend) {
                     std::vector<std::vector<float>> outputs;
                     std::unique_ptr<SequenceCache> cache = model.new_cache(16);
                     ForwardBatch batch;
                     batch.visibility = Visibility::causal();
                     batch.add_sequence(random_ids(8, model.vocab_size(), 400));
                     batch.caches = {{cache.get(), CachePolicy::Commit}};
                     model.forward(batch);
                     for (int32_t position = 8; position < 14; ++position) {
                       batch.clear();
                       batch.add_sequence(random_ids(1, model.vocab_size(), 500 + position), position);
                       batch.caches = {{cache.get(), CachePolicy::Commit}};
                       all_rows(batch);
                       outputs.push_back(logits_of(backend, model.forward(batch)));
                     }
                     return outputs;
                   },
                   {0, 0});
}

// An f32 and a bf16 checkpoint (bf16 activations on CUDA: cuDNN's attention where it applies).
INSTANTIATE_TEST_SUITE_P(ParityModels, CudaGraphs, ::testing::Values("llada", "qwen3"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace dlm
