// The CPU dense ops against torch: tests/golden/ops_dense.safetensors holds inputs and float64 torch results
// (stored as f32) written by tools/golden/ops_dense.py, which documents the cases and their names.
// Bound for every case: max |ours - torch| <= 1e-5 * max(1, max |torch|), in f32.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/linear.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "engine/ops/softmax.h"

namespace dlm {
namespace {

constexpr double kRelativeBound = 1e-5;

const std::string& golden_path() {
  static const std::string path = std::string(DLM_GOLDEN_DIR) + "/ops_dense.safetensors";
  return path;
}

class OpsGolden : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(golden_path())) file_ = std::make_unique<SafetensorsFile>(golden_path());
  }
  static void TearDownTestSuite() { file_.reset(); }

  void SetUp() override {
    // A missing file is a failure, not a skip: the golden data is part of the test.
    ASSERT_NE(file_, nullptr) << golden_path()
                              << " is missing: generate it with `python3 tools/golden/ops_dense.py "
                              << golden_path() << "` (needs torch and safetensors)";
  }

  static Tensor arg(const std::string& name, const std::string& what) {
    return file_->tensor(name + "." + what);
  }
  static bool has(const std::string& name, const std::string& what) {
    return file_->contains(name + "." + what);
  }

  static std::string param(const std::string& name, const std::string& what) {
    const auto& metadata = file_->metadata();
    auto it = metadata.find(name + "." + what);
    if (it == metadata.end()) fail("{}: no metadata {}.{}", golden_path(), name, what);
    return it->second;
  }
  static double number(const std::string& name, const std::string& what) {
    return std::stod(param(name, what));
  }

  static HostTensor output_like(const std::string& name) {
    return HostTensor(DType::F32, arg(name, "out").shape());
  }

  // max |got - out| against the bound, reported with the case name.
  static void expect_matches(const std::string& name, const Tensor& got) {
    const Tensor want = arg(name, "out");
    ASSERT_EQ(want.dtype(), DType::F32) << name;
    ASSERT_EQ(got.shape(), want.shape()) << name;
    const auto* w = static_cast<const float*>(want.data());
    const auto* g = static_cast<const float*>(got.data());
    double max_ref = 0.0;
    double max_err = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(w[i])));
      const double err = std::abs(static_cast<double>(g[i]) - w[i]);
      if (!(err <= max_err)) {  // NaN counts as the worst error
        max_err = err;
        worst = i;
      }
    }
    const double bound = kRelativeBound * std::max(1.0, max_ref);
    EXPECT_LE(max_err, bound) << name << ": worst at flat index " << worst << ", ours " << g[worst]
                              << ", torch " << w[worst];
  }

  CpuBackend backend_{4};
  static std::unique_ptr<SafetensorsFile> file_;
};

std::unique_ptr<SafetensorsFile> OpsGolden::file_;

TEST_F(OpsGolden, Linear) {
  for (const std::string name : {"linear_f32", "linear_bf16", "linear_f16", "linear_nobias"}) {
    HostTensor out = output_like(name);
    std::optional<Tensor> bias;
    if (has(name, "bias")) bias = arg(name, "bias");
    ops::linear(backend_, arg(name, "x"), arg(name, "weight"), bias, out);
    expect_matches(name, out);
  }
  EXPECT_EQ(arg("linear_bf16", "weight").dtype(), DType::BF16);
  EXPECT_EQ(arg("linear_f16", "weight").dtype(), DType::F16);
  EXPECT_FALSE(has("linear_nobias", "bias"));
}

TEST_F(OpsGolden, Embedding) {
  for (const std::string name : {"embedding_f32", "embedding_bf16"}) {
    HostTensor out = output_like(name);
    ops::embedding(backend_, arg(name, "table"), arg(name, "ids"), out);
    expect_matches(name, out);
  }
}

TEST_F(OpsGolden, RmsNorm) {
  for (const std::string name : {"rms_norm_plain", "rms_norm_one_plus"}) {
    const std::string mode = param(name, "mode");
    ASSERT_TRUE(mode == "plain" || mode == "one_plus") << name << " mode " << mode;
    HostTensor out = output_like(name);
    ops::rms_norm(backend_, arg(name, "x"), arg(name, "weight"), static_cast<float>(number(name, "eps")),
                  mode == "plain" ? NormWeight::Plain : NormWeight::OnePlus, out);
    expect_matches(name, out);
  }
}

TEST_F(OpsGolden, LayerNorm) {
  for (const std::string name : {"layer_norm", "layer_norm_nobias"}) {
    HostTensor out = output_like(name);
    std::optional<Tensor> bias;
    if (has(name, "bias")) bias = arg(name, "bias");
    ops::layer_norm(backend_, arg(name, "x"), arg(name, "weight"), bias,
                    static_cast<float>(number(name, "eps")), out);
    expect_matches(name, out);
  }
}

TEST_F(OpsGolden, Rope) {
  for (const std::string name : {"rope_half_split", "rope_interleaved", "rope_large_position"}) {
    const std::string layout = param(name, "layout");
    ASSERT_TRUE(layout == "half_split" || layout == "interleaved") << name << " layout " << layout;
    RopeParams params;
    params.layout = layout == "half_split" ? RopeLayout::HalfSplit : RopeLayout::Interleaved;
    params.rotary_dim = std::stoll(param(name, "rotary_dim"));
    params.attention_factor = static_cast<float>(number(name, "attention_factor"));
    HostTensor out = output_like(name);
    ops::rope(backend_, arg(name, "x"), arg(name, "positions"), arg(name, "inv_freq"), params, out);
    expect_matches(name, out);
  }
}

TEST_F(OpsGolden, DefaultRopeInvFreq) {
  // torch's f32 pow is not always correctly rounded, so our inv_freq may differ from its by one ulp.
  for (const std::string name : {"rope_half_split", "rope_interleaved", "rope_large_position"}) {
    const Tensor want = arg(name, "inv_freq");
    HostTensor got = ops::default_rope_inv_freq(number(name, "theta"), std::stoll(param(name, "rotary_dim")));
    ASSERT_EQ(got.tensor().shape(), want.shape()) << name;
    const auto* w = static_cast<const float*>(want.data());
    const float* g = got.data<float>();
    for (int64_t i = 0; i < want.numel(); ++i) {
      EXPECT_LE(std::abs(g[i] - w[i]), std::abs(w[i]) * 0x1p-23f) << name << " index " << i;
    }
  }
}

TEST_F(OpsGolden, Activations) {
  HostTensor silu_out = output_like("silu");
  ops::silu(backend_, arg("silu", "x"), silu_out);
  expect_matches("silu", silu_out);
  for (const std::string name : {"gelu", "gelu_tanh"}) {
    HostTensor out = output_like(name);
    ops::gelu(backend_, arg(name, "x"), name == "gelu" ? GeluApproximation::None : GeluApproximation::Tanh,
              out);
    expect_matches(name, out);
  }
  HostTensor swiglu_out = output_like("swiglu");
  ops::swiglu(backend_, arg("swiglu", "gate"), arg("swiglu", "up"), swiglu_out);
  expect_matches("swiglu", swiglu_out);
  for (const std::string name : {"geglu", "geglu_tanh"}) {
    HostTensor out = output_like(name);
    ops::geglu(backend_, arg(name, "gate"), arg(name, "up"),
               name == "geglu" ? GeluApproximation::None : GeluApproximation::Tanh, out);
    expect_matches(name, out);
  }
}

TEST_F(OpsGolden, Add) {
  for (const std::string name : {"add", "add_row"}) {
    HostTensor out = output_like(name);
    ops::add(backend_, arg(name, "a"), arg(name, "b"), out);
    expect_matches(name, out);
  }
  EXPECT_EQ(arg("add_row", "b").rank(), 1);
}

TEST_F(OpsGolden, Softmax) {
  HostTensor out = output_like("softmax");
  ops::softmax(backend_, arg("softmax", "x"), out);
  expect_matches("softmax", out);
  HostTensor log_out = output_like("log_softmax");
  ops::log_softmax(backend_, arg("log_softmax", "x"), log_out);
  expect_matches("log_softmax", log_out);
}

}  // namespace
}  // namespace dlm
