// LLaDA's released format: the OLMo-style config.json of LLaDA-8B (configuration_llada.py's ModelConfig keys)
// read into a TransformerConfig, the refusals of options the released models leave off, and the tensor names
// of modeling_llada.py (LLaDAModel / LLaDALlamaBlock) mapped onto the transformer's weights.
#include "backbones/llada_format.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Modelled on the config.json released with GSAI-ML/LLaDA-8B (model_type "llada"): its model keys and values.
json llada_8b_config() {
  return json::parse(R"({
    "architectures": ["LLaDAModelLM"],
    "model_type": "llada",
    "activation_type": "silu",
    "alibi": false,
    "attention_layer_norm": false,
    "block_type": "llama",
    "d_model": 4096,
    "embedding_size": 126464,
    "eos_token_id": 126081,
    "include_bias": false,
    "include_qkv_bias": false,
    "input_emb_norm": false,
    "layer_norm_type": "rms",
    "mask_token_id": 126336,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 12288,
    "mlp_ratio": 4,
    "multi_query_attention": null,
    "n_heads": 32,
    "n_kv_heads": 32,
    "n_layers": 32,
    "pad_token_id": 126081,
    "rms_norm_eps": 1e-05,
    "rope": true,
    "rope_theta": 500000.0,
    "scale_logits": false,
    "use_cache": false,
    "vocab_size": 126464,
    "weight_tying": false
  })");
}

TransformerConfig read(const json& config) {
  return read_llada_config(HfConfig::parse(config.dump(), "config.json"));
}

std::string error_of(const json& config) {
  return input_error_of([&] { read(config); });
}

TEST(LladaFormat, ReadsTheReleased8BConfig) {
  const TransformerConfig c = read(llada_8b_config());
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.intermediate_size, 12288);
  EXPECT_EQ(c.vocab_size, 126464);
  EXPECT_EQ(c.max_positions, 4096);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(LladaFormat, KvHeads) {
  json config = llada_8b_config();
  config["n_kv_heads"] = 8;
  EXPECT_EQ(read(config).num_kv_heads, 8);
  config["n_kv_heads"] = nullptr;  // effective_n_kv_heads: None means n_heads
  EXPECT_EQ(read(config).num_kv_heads, 32);
  config.erase("n_kv_heads");
  EXPECT_EQ(read(config).num_kv_heads, 32);
  config["multi_query_attention"] = true;  // None n_kv_heads with multi-query: a single KV head
  EXPECT_EQ(read(config).num_kv_heads, 1);
  config["multi_query_attention"] = false;
  EXPECT_EQ(read(config).num_kv_heads, 32);
}

TEST(LladaFormat, MlpSizeFallsBackToRatio) {
  json config = llada_8b_config();
  config["mlp_hidden_size"] = nullptr;
  config["mlp_ratio"] = 3;
  EXPECT_EQ(read(config).intermediate_size, 3 * 4096);
  config.erase("mlp_ratio");  // ModelConfig's default ratio is 4
  EXPECT_EQ(read(config).intermediate_size, 4 * 4096);
  config.erase("mlp_hidden_size");
  EXPECT_EQ(read(config).intermediate_size, 4 * 4096);
  config["mlp_ratio"] = 8;
  config["mlp_hidden_size"] = 1000;  // the exact size wins over the ratio
  EXPECT_EQ(read(config).intermediate_size, 1000);
}

TEST(LladaFormat, VocabularyRowsAreTheEmbeddingSize) {
  json config = llada_8b_config();
  config["vocab_size"] = 126349;  // the tokenizer's size; the table is padded to a multiple of 128
  EXPECT_EQ(read(config).vocab_size, 126464);
  config["embedding_size"] = nullptr;  // None: the vocabulary itself
  EXPECT_EQ(read(config).vocab_size, 126349);
  config["embedding_size"] = 126208;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("vocab_size 126349"),
                                      HasSubstr("embedding_size 126208")));
}

TEST(LladaFormat, OptionalSettingsAreRead) {
  json config = llada_8b_config();
  config["include_qkv_bias"] = true;
  config["weight_tying"] = true;
  config["rms_norm_eps"] = 1e-6;
  config["rope_theta"] = 10000.0;
  const TransformerConfig c = read(config);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias) << "include_qkv_bias biases q, k and v only";
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(c.rope.theta, 10000.0);
}

// Each option LLaDA's code implements but the released models leave off is refused by name: set to another
// value, and where ModelConfig's default is not the released value, also when absent.
TEST(LladaFormat, RejectsUnsupportedOptionsByName) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"block_type", "sequential"},
      {"block_type", "parallel"},
      {"activation_type", "swiglu"},
      {"activation_type", "gelu"},
      {"layer_norm_type", "default"},
      {"layer_norm_type", "gemma_rms"},
      {"include_bias", true},
      {"rope", false},
      {"alibi", true},
      {"attention_layer_norm", true},
      {"input_emb_norm", true},
      {"scale_logits", true},
  };
  for (const auto& [key, value] : bad) {
    json config = llada_8b_config();
    config[key] = value;
    EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr(key), HasSubstr("not supported")))
        << key << " = " << value;
  }
  for (const char* key : {"block_type", "activation_type", "layer_norm_type", "rope"}) {
    json config = llada_8b_config();
    config.erase(key);
    EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr(key), HasSubstr("not supported")))
        << key << " absent";
  }
  for (const char* key :
       {"include_bias", "alibi", "attention_layer_norm", "input_emb_norm", "scale_logits"}) {
    json config = llada_8b_config();
    config.erase(key);  // ModelConfig's default is the released value
    EXPECT_NO_THROW(read(config)) << key << " absent";
  }
}

// bias_for_layer_norm = true gives every norm a bias (LayerNormBase); the transformer has none, so the
// checkpoint's norm biases would be ignored.
TEST(LladaFormat, RejectsNormBiases) {
  json config = llada_8b_config();
  config["bias_for_layer_norm"] = true;
  EXPECT_THAT(error_of(config),
              AllOf(HasSubstr("config.json"), HasSubstr("bias_for_layer_norm"), HasSubstr("not supported")));
  config["bias_for_layer_norm"] = nullptr;  // None: inherits include_bias (false)
  EXPECT_NO_THROW(read(config));
  config["bias_for_layer_norm"] = false;
  EXPECT_NO_THROW(read(config));
}

// ModelConfig's weight_tying defaults to True: a config.json without the key ties the output layer to wte.
TEST(LladaFormat, AbsentWeightTyingTies) {
  json config = llada_8b_config();
  config.erase("weight_tying");
  EXPECT_TRUE(read(config).tie_word_embeddings);
}

TEST(LladaFormat, RejectsRopeScaling) {
  json config = llada_8b_config();
  config["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("rope_scaling")));
  config["rope_scaling"] = nullptr;
  EXPECT_NO_THROW(read(config));
}

TEST(LladaFormat, RejectsBadSizes) {
  json config = llada_8b_config();
  config["n_heads"] = 30;
  config["n_kv_heads"] = 30;
  EXPECT_THAT(error_of(config),
              AllOf(HasSubstr("config.json"), HasSubstr("d_model 4096"), HasSubstr("n_heads 30")));
  config = llada_8b_config();
  config["n_kv_heads"] = 5;
  EXPECT_THAT(error_of(config),
              AllOf(HasSubstr("config.json"), HasSubstr("32 attention heads"), HasSubstr("5 KV heads")));
  config = llada_8b_config();
  config["n_layers"] = 0;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("layer count must be positive")));
  config = llada_8b_config();
  config["n_heads"] = 0;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("head count must be positive")));
  config = llada_8b_config();
  config["rope_theta"] = 0.0;
  EXPECT_THAT(error_of(config),
              AllOf(HasSubstr("config.json"), HasSubstr("rope_theta must be greater than 1")));
  config = llada_8b_config();
  config["rms_norm_eps"] = 1e308;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"),
                                      HasSubstr("rms_norm_eps must be a positive number up to 1e30")));
}

TEST(LladaFormat, MissingKeysAreNamed) {
  for (const char* key : {"d_model", "n_heads", "n_layers", "max_sequence_length"}) {
    json config = llada_8b_config();
    config.erase(key);
    EXPECT_THAT(error_of(config),
                AllOf(HasSubstr("config.json"), HasSubstr(fmt::format("'{}'", key)), HasSubstr("missing")));
  }
  json config = llada_8b_config();
  config.erase("vocab_size");
  config.erase("embedding_size");
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("'vocab_size'")));
  config = llada_8b_config();
  config["d_model"] = "4096";
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("'d_model'"), HasSubstr("integer")));
}

TEST(LladaFormat, TensorNames) {
  const TransformerTensorNames names = llada_tensor_names();
  auto layer = [](const std::string& pattern, int i) { return fmt::format(fmt::runtime(pattern), i); };
  EXPECT_EQ(names.embed_tokens, "model.transformer.wte.weight");
  EXPECT_EQ(names.final_norm, "model.transformer.ln_f.weight");
  EXPECT_EQ(names.lm_head, "model.transformer.ff_out.weight");
  EXPECT_EQ(layer(names.input_norm, 7), "model.transformer.blocks.7.attn_norm.weight");
  EXPECT_EQ(layer(names.post_attention_norm, 7), "model.transformer.blocks.7.ff_norm.weight");
  EXPECT_EQ(layer(names.q, 7), "model.transformer.blocks.7.q_proj");
  EXPECT_EQ(layer(names.k, 7), "model.transformer.blocks.7.k_proj");
  EXPECT_EQ(layer(names.v, 7), "model.transformer.blocks.7.v_proj");
  EXPECT_EQ(layer(names.o, 7), "model.transformer.blocks.7.attn_out");
  EXPECT_EQ(layer(names.gate, 7), "model.transformer.blocks.7.ff_proj");
  EXPECT_EQ(layer(names.up, 7), "model.transformer.blocks.7.up_proj");
  EXPECT_EQ(layer(names.down, 7), "model.transformer.blocks.7.ff_out");
}

// A tiny checkpoint under LLaDA's names, each tensor filled with its own constant, loads into the right
// slots of the transformer's weights.
class LladaWeights : public ::testing::Test {
 protected:
  static constexpr int64_t kHidden = 8, kHeads = 2, kKvHeads = 1, kMlp = 12, kVocab = 16, kLayers = 2;

  json tiny_config() const {
    json config = llada_8b_config();
    config["d_model"] = kHidden;
    config["n_heads"] = kHeads;
    config["n_kv_heads"] = kKvHeads;
    config["n_layers"] = kLayers;
    config["mlp_hidden_size"] = kMlp;
    config["vocab_size"] = kVocab;
    config["embedding_size"] = kVocab;
    config["max_sequence_length"] = 64;
    return config;
  }

  // name -> (shape, fill value)
  std::map<std::string, std::pair<Shape, float>> tensors() const {
    const int64_t kv = kKvHeads * kHidden / kHeads;
    std::map<std::string, std::pair<Shape, float>> t = {
        {"model.transformer.wte.weight", {Shape{kVocab, kHidden}, 1.0f}},
        {"model.transformer.ln_f.weight", {Shape{kHidden}, 2.0f}},
        {"model.transformer.ff_out.weight", {Shape{kVocab, kHidden}, 3.0f}},
    };
    for (int64_t i = 0; i < kLayers; ++i) {
      const std::string p = fmt::format("model.transformer.blocks.{}.", i);
      const float base = 10.0f * static_cast<float>(i + 1);
      t[p + "attn_norm.weight"] = {Shape{kHidden}, base + 0};
      t[p + "q_proj.weight"] = {Shape{kHidden, kHidden}, base + 1};
      t[p + "k_proj.weight"] = {Shape{kv, kHidden}, base + 2};
      t[p + "v_proj.weight"] = {Shape{kv, kHidden}, base + 3};
      t[p + "attn_out.weight"] = {Shape{kHidden, kHidden}, base + 4};
      t[p + "ff_norm.weight"] = {Shape{kHidden}, base + 5};
      t[p + "ff_proj.weight"] = {Shape{kMlp, kHidden}, base + 6};
      t[p + "up_proj.weight"] = {Shape{kMlp, kHidden}, base + 7};
      t[p + "ff_out.weight"] = {Shape{kHidden, kMlp}, base + 8};
    }
    return t;
  }

  std::string write(const std::map<std::string, std::pair<Shape, float>>& tensors) const {
    const std::string path =
        (std::filesystem::path(::testing::TempDir()) /
         fmt::format("llada_{}.safetensors", ::testing::UnitTest::GetInstance()->current_test_info()->name()))
            .string();
    std::vector<HostTensor> owned;
    std::vector<NamedTensor> named;
    for (const auto& [name, entry] : tensors) {
      owned.push_back(HostTensor::from(
          entry.first, std::vector<float>(static_cast<size_t>(entry.first.numel()), entry.second)));
      named.push_back({name, owned.back().tensor()});
    }
    write_safetensors(path, named);
    return path;
  }
};

float first(const Tensor& tensor) {
  return tensor.data_as<float>()[0];
}

TEST_F(LladaWeights, LoadIntoTheirRoles) {
  const Checkpoint checkpoint = Checkpoint::open(write(tensors()));
  const TransformerConfig config = read(tiny_config());
  const TransformerWeights w = load_transformer_weights(checkpoint, config, llada_tensor_names(), "tiny");
  EXPECT_EQ(first(w.embed_tokens), 1.0f);
  EXPECT_EQ(first(w.norm), 2.0f);
  EXPECT_EQ(first(w.lm_head), 3.0f);
  ASSERT_EQ(w.layers.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const float base = 10.0f * static_cast<float>(i + 1);
    const TransformerLayerWeights& layer = w.layers[i];
    EXPECT_EQ(first(layer.input_norm), base + 0);
    EXPECT_EQ(first(layer.q.weight), base + 1);
    EXPECT_EQ(first(layer.k.weight), base + 2);
    EXPECT_EQ(first(layer.v.weight), base + 3);
    EXPECT_EQ(first(layer.o.weight), base + 4);
    EXPECT_EQ(first(layer.post_attention_norm), base + 5);
    EXPECT_EQ(first(layer.gate.weight), base + 6) << "ff_proj is the SiLU-gated projection";
    EXPECT_EQ(first(layer.up.weight), base + 7);
    EXPECT_EQ(first(layer.down.weight), base + 8) << "blocks.{i}.ff_out is the MLP's down projection";
    EXPECT_FALSE(layer.q.bias.has_value());
  }
  // 16*8 embeddings + 8 final norm + 16*8 head; per layer 2*8 norms + 8*8 q + 2*(4*8) k/v + 8*8 out
  // + 3*(12*8) MLP = 16 + 64 + 64 + 64 + 288 = 496.
  EXPECT_EQ(w.parameter_count(), 128 + 8 + 128 + 2 * 496);
}

TEST_F(LladaWeights, TiedEmbeddingsNeedNoOutputLayer) {
  auto t = tensors();
  t.erase("model.transformer.ff_out.weight");
  json config = tiny_config();
  config["weight_tying"] = true;
  const Checkpoint checkpoint = Checkpoint::open(write(t));
  const TransformerWeights w =
      load_transformer_weights(checkpoint, read(config), llada_tensor_names(), "tiny");
  EXPECT_EQ(w.lm_head.data(), w.embed_tokens.data());
  EXPECT_EQ(w.parameter_count(), 128 + 8 + 2 * 496);
}

TEST_F(LladaWeights, QkvBiasTensors) {
  auto t = tensors();
  json config = tiny_config();
  config["include_qkv_bias"] = true;
  const std::string message = input_error_of([&] {
    load_transformer_weights(Checkpoint::open(write(t)), read(config), llada_tensor_names(), "tiny");
  });
  for (const char* name : {"q_proj.bias", "k_proj.bias", "v_proj.bias"})
    EXPECT_THAT(message, HasSubstr(fmt::format("model.transformer.blocks.1.{}: missing", name)));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("attn_out.bias")));
  EXPECT_THAT(message, HasSubstr("6 weight problems"));
}

TEST_F(LladaWeights, MissingOutputLayerIsNamed) {
  auto t = tensors();
  t.erase("model.transformer.ff_out.weight");
  const std::string message = input_error_of([&] {
    load_transformer_weights(Checkpoint::open(write(t)), read(tiny_config()), llada_tensor_names(), "tiny");
  });
  EXPECT_THAT(message, AllOf(HasSubstr("tiny"), HasSubstr("model.transformer.ff_out.weight: missing"),
                             HasSubstr("[16,8]")));
}

}  // namespace
}  // namespace dlm
