#include "engine/io/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/core/error.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Shaped like a real LLaDA / Llama config.json.
constexpr const char* kConfig = R"({
  "architectures": ["LLaDAModelLM"],
  "model_type": "llada",
  "hidden_size": 4096,
  "num_attention_heads": 32,
  "num_key_value_heads": null,
  "rope_theta": 500000.0,
  "rms_norm_eps": 1e-05,
  "max_position_embeddings": 4096,
  "vocab_size": 126464,
  "tie_word_embeddings": false,
  "layer_types": [0, 1, 1],
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192},
  "text_config": {"hidden_size": "wide", "num_hidden_layers": 2},
  "big": 3000000000,
  "huge": 18446744073709551615,
  "eos_token_id": 126081
})";

TEST(HfConfig, TypedGetters) {
  HfConfig config = HfConfig::parse(kConfig, "config.json");
  EXPECT_EQ(config.required<int>("num_attention_heads"), 32);
  EXPECT_EQ(config.required<int64_t>("vocab_size"), 126464);
  EXPECT_EQ(config.required<std::string>("model_type"), "llada");
  EXPECT_EQ(config.required<double>("rope_theta"), 500000.0);
  EXPECT_EQ(config.required<double>("hidden_size"), 4096.0);  // an integer is also a number
  EXPECT_DOUBLE_EQ(config.required<double>("rms_norm_eps"), 1e-5);
  EXPECT_FALSE(config.required<bool>("tie_word_embeddings"));
  EXPECT_EQ(config.required<std::vector<int64_t>>("layer_types"), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(config.required<std::vector<int>>("layer_types"), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(config.required<std::vector<double>>("layer_types"), (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(config.required<std::vector<std::string>>("architectures"),
            (std::vector<std::string>{"LLaDAModelLM"}));
  EXPECT_EQ(config.required<int64_t>("big"), 3000000000);
}

TEST(HfConfig, AbsentAndNullKeys) {
  HfConfig config = HfConfig::parse(kConfig, "config.json");
  EXPECT_TRUE(config.has("hidden_size"));
  EXPECT_FALSE(config.has("num_key_value_heads")) << "null counts as absent";
  EXPECT_FALSE(config.has("sliding_window"));
  EXPECT_EQ(config.optional<int>("num_key_value_heads"), std::nullopt);
  EXPECT_EQ(config.optional<int>("sliding_window"), std::nullopt);
  EXPECT_EQ(config.optional<int>("hidden_size"), 4096);
  EXPECT_EQ(config.value_or<int>("num_key_value_heads", 32), 32);
  EXPECT_EQ(config.value_or<int>("hidden_size", 1), 4096);
  EXPECT_EQ(config.value_or<std::string>("hidden_act", "silu"), "silu");
  EXPECT_THAT(config.keys(), ::testing::Contains("num_key_value_heads"));
  EXPECT_EQ(config.keys().size(), 16u);

  EXPECT_EQ(input_error_of([&] { config.required<int>("intermediate_size"); }),
            "config.json: key 'intermediate_size' is required but missing");
  EXPECT_EQ(input_error_of([&] { config.required<int>("num_key_value_heads"); }),
            "config.json: key 'num_key_value_heads' is required but null");
}

TEST(HfConfig, TypeErrorsNameFileKeyAndType) {
  HfConfig config = HfConfig::parse(R"({"num_attention_heads": "32", "max_position_embeddings": 4096.0,
                                        "rope_theta": "1e4", "tie_word_embeddings": 1, "name": 7,
                                        "eos": [1, "2"], "ids": 5})",
                                    "config.json");
  EXPECT_EQ(input_error_of([&] { config.required<int>("num_attention_heads"); }),
            "config.json: key 'num_attention_heads' must be an integer, got string \"32\"");
  EXPECT_EQ(input_error_of([&] { config.required<int64_t>("max_position_embeddings"); }),
            "config.json: key 'max_position_embeddings' must be an integer, got float 4096.0");
  EXPECT_EQ(input_error_of([&] { config.optional<double>("rope_theta"); }),
            "config.json: key 'rope_theta' must be a number, got string \"1e4\"");
  EXPECT_EQ(input_error_of([&] { config.value_or<bool>("tie_word_embeddings", true); }),
            "config.json: key 'tie_word_embeddings' must be a boolean, got integer 1");
  EXPECT_EQ(input_error_of([&] { config.required<std::string>("name"); }),
            "config.json: key 'name' must be a string, got integer 7");
  EXPECT_EQ(input_error_of([&] { config.required<std::vector<int64_t>>("eos"); }),
            "config.json: key 'eos'[1] must be an integer, got string \"2\"");
  EXPECT_EQ(input_error_of([&] { config.required<std::vector<int64_t>>("ids"); }),
            "config.json: key 'ids' must be an array of integers, got integer 5");
}

TEST(HfConfig, LongValuesAreShownAbbreviatedWithoutSplittingACharacter) {
  // 39 ASCII characters, then two-byte 'é's: the cut after 40 characters falls between the bytes of the 21st.
  const std::string long_text = std::string(39, 'x') + "ééé";
  HfConfig config = HfConfig::parse(R"({"hidden_size": ")" + long_text + R"("})", "config.json");
  EXPECT_EQ(
      input_error_of([&] { config.required<int>("hidden_size"); }),
      "config.json: key 'hidden_size' must be an integer, got string \"" + std::string(39, 'x') + "é...\"");
}

TEST(HfConfig, IntegerRanges) {
  HfConfig config = HfConfig::parse(kConfig, "config.json");
  EXPECT_EQ(input_error_of([&] { config.required<int>("big"); }),
            "config.json: key 'big' = 3000000000 is out of range for a 32-bit integer");
  EXPECT_THAT(input_error_of([&] { config.required<int64_t>("huge"); }),
              HasSubstr("key 'huge' = 18446744073709551615 is out of range for a 64-bit integer"));
}

TEST(HfConfig, IntOrIntList) {
  HfConfig config =
      HfConfig::parse(R"({"one": 2, "many": [1, 2, 3], "none": null, "bad": "x"})", "generation_config.json");
  EXPECT_EQ(config.optional_int_list("one"), (std::vector<int64_t>{2}));
  EXPECT_EQ(config.optional_int_list("many"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(config.optional_int_list("none"), std::nullopt);
  EXPECT_EQ(config.optional_int_list("absent"), std::nullopt);
  EXPECT_EQ(input_error_of([&] { config.optional_int_list("bad"); }),
            "generation_config.json: key 'bad' must be an integer or an array of integers, got string \"x\"");
}

TEST(HfConfig, NestedObjectsNameTheFullKey) {
  HfConfig config = HfConfig::parse(kConfig, "config.json");
  HfConfig rope = config.object("rope_scaling");
  EXPECT_EQ(rope.required<std::string>("rope_type"), "llama3");
  EXPECT_EQ(rope.required<double>("factor"), 8.0);
  EXPECT_EQ(rope.source(), "config.json");
  EXPECT_EQ(input_error_of([&] { rope.required<double>("low_freq_factor"); }),
            "config.json: key 'rope_scaling.low_freq_factor' is required but missing");
  HfConfig text = *config.optional_object("text_config");
  EXPECT_EQ(text.required<int>("num_hidden_layers"), 2);
  EXPECT_EQ(input_error_of([&] { text.required<int>("hidden_size"); }),
            "config.json: key 'text_config.hidden_size' must be an integer, got string \"wide\"");
  EXPECT_EQ(config.optional_object("vision_config"), std::nullopt);
  EXPECT_EQ(config.optional_object("num_key_value_heads"), std::nullopt);  // null
  EXPECT_EQ(input_error_of([&] { config.object("hidden_size"); }),
            "config.json: key 'hidden_size' must be an object, got integer 4096");
  EXPECT_EQ(input_error_of([&] { config.object("vision_config"); }),
            "config.json: key 'vision_config' is required but missing");
}

TEST(HfConfig, MalformedJson) {
  EXPECT_THAT(input_error_of([] { HfConfig::parse(R"({"a": 1,})", "config.json"); }),
              AllOf(HasSubstr("config.json: invalid JSON"), HasSubstr("line 1")));
  EXPECT_EQ(input_error_of([] { HfConfig::parse("[1]", "config.json"); }),
            "config.json: must be a JSON object, got array");
  EXPECT_EQ(input_error_of([] { HfConfig::parse(R"({"a": 1, "a": 2})", "config.json"); }),
            "config.json: duplicate key 'a'");
  EXPECT_EQ(input_error_of([] { HfConfig::parse(R"({"a": {"b": 1, "b": 1}})", "config.json"); }),
            "config.json: duplicate key 'b'");
  EXPECT_NO_THROW(HfConfig::parse(R"({"a": {"b": 1}, "c": {"b": 1}})", "config.json"))
      << "the same key in different objects is fine";
  EXPECT_THAT(input_error_of([] { HfConfig::parse("", "config.json"); }),
              HasSubstr("config.json: invalid JSON"));
}

TEST(HfConfig, LoadsFilesOfEveryKind) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("dlm_hf_config_{}", ::getpid());
  std::filesystem::create_directories(dir);
  std::string generation = (dir / "generation_config.json").string();
  std::ofstream(generation) << R"({"bos_token_id": 1, "eos_token_id": [2, 3], "temperature": 0.6})";
  std::string tokenizer = (dir / "tokenizer_config.json").string();
  std::ofstream(tokenizer)
      << R"({"add_bos_token": true, "chat_template": "{{ messages }}", "model_max_length": 1e30})";

  HfConfig gen = HfConfig::load(generation);
  EXPECT_EQ(gen.source(), generation);
  EXPECT_EQ(gen.optional_int_list("eos_token_id"), (std::vector<int64_t>{2, 3}));
  EXPECT_DOUBLE_EQ(gen.required<double>("temperature"), 0.6);
  HfConfig tok = HfConfig::load(tokenizer);
  EXPECT_TRUE(tok.required<bool>("add_bos_token"));
  EXPECT_EQ(tok.required<std::string>("chat_template"), "{{ messages }}");
  EXPECT_EQ(input_error_of([&] { tok.required<int64_t>("model_max_length"); }),
            tokenizer + ": key 'model_max_length' must be an integer, got float 1e+30");

  std::string missing = (dir / "config.json").string();
  EXPECT_THAT(input_error_of([&] { HfConfig::load(missing); }),
              AllOf(HasSubstr(missing), HasSubstr("cannot open")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dlm
