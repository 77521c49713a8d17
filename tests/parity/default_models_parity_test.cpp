// The shipped default models (models/) against the network that trained them: tools/train/export.py wrote,
// next to the weights, the logits the PyTorch model computes from the same bf16 values, for prompts of every
// task and a prose prefix (tests/golden/default_models). Each model runs with the visibility its family
// decodes with, as it was trained: the diffusion model bidirectionally, the AR model causally. Metric and
// bound as in transformers_parity_test: max abs error over a case's logits relative to its logit scale, at
// most 1e-4.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "backbones/load_model.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/io/safetensors.h"

namespace dlm {
namespace {

struct DefaultModel {
  const char* dir;     // under models/
  const char* golden;  // under tests/golden/default_models/
  VisibilityKind attention;
};

const DefaultModel kModels[] = {{"diffusion-11m", "diffusion-11m", VisibilityKind::Bidirectional},
                                {"ar-11m", "ar-11m", VisibilityKind::Causal}};

TEST(DefaultModelsParity, EngineMatchesTheTrainingCode) {
  for (const DefaultModel& expected : kModels) {
    CpuBackend backend(2);
    const LoadedModel model = load_model(backend, std::string(DLM_MODELS_DIR) + "/" + expected.dir);
    ASSERT_EQ(model.spec.visibility.kind, expected.attention) << expected.dir;
    const SafetensorsFile golden(
        fmt::format("{}/default_models/{}.safetensors", DLM_GOLDEN_DIR, expected.golden));
    std::stringstream cases(golden.metadata().at("cases"));
    int checked = 0;
    for (std::string name; std::getline(cases, name, ',');) {
      const Tensor ids = golden.tensor(name + ".input_ids");
      const Tensor want = golden.tensor(name + ".logits");
      ForwardBatch batch;
      batch.add_sequence(std::vector<int32_t>(ids.data_as<int32_t>(), ids.data_as<int32_t>() + ids.numel()));
      for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
      batch.visibility = model.spec.visibility;
      const Tensor got = model.backbone->forward(batch).logits;
      ASSERT_EQ(got.numel(), want.numel()) << expected.dir << " " << name;
      double scale = 0.0, error = 0.0;
      for (int64_t i = 0; i < got.numel(); ++i) {
        const double reference = want.data_as<float>()[i];
        scale = std::max(scale, std::abs(reference));
        error = std::max(error, std::abs(got.data_as<float>()[i] - reference));
      }
      EXPECT_LE(error / std::max(1.0, scale), 1e-4)
          << expected.dir << " " << name << ": max abs error " << error << " at logit scale " << scale;
      ++checked;
    }
    EXPECT_GE(checked, 5) << expected.dir;  // a prompt of every task but sudoku9, and prose
  }
}

}  // namespace
}  // namespace dlm
