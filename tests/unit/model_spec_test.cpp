#include "backbones/model_spec.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "backbones/model_family.h"
#include "backbones/model_overlay.h"
#include "engine/core/error.h"
#include "engine/io/generation_config.h"
#include "engine/io/hf_config.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr int64_t kVocab = 1000;

// A tokenizer that is only a table of whole tokens and a set of special ids.
class FakeTokenizer : public Tokenizer {
 public:
  FakeTokenizer(std::map<std::string, int32_t> tokens, SpecialTokens special)
      : tokens_(std::move(tokens)), special_(special) {}

  std::vector<int32_t> encode(std::string_view text, SpecialText) const override {
    std::optional<int32_t> id = token_to_id(text);
    DLM_CHECK(id.has_value(), "the fake tokenizer encodes whole tokens only, not '{}'", text);
    return {*id};
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) text += id_to_token(id);
    return text;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(kVocab); }
  bool has_id(int32_t id) const override { return id >= 0 && id < kVocab; }
  std::string_view kind() const override { return "fake"; }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    auto it = tokens_.find(std::string(token));
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    for (const auto& [text, token_id] : tokens_) {
      if (token_id == id) return text;
    }
    fail_input("token id {} is not in the fake tokenizer", id);
  }
  const SpecialTokens& special_tokens() const override { return special_; }

 private:
  std::map<std::string, int32_t> tokens_;
  SpecialTokens special_;
};

// Every text token the built-in overlays name, at distinct ids.
const std::map<std::string, int32_t> kAllTokens = {
    {"<|mdm_mask|>", 900},
    {"<|mask|>", 901},
    {"<|MASK|>", 902},
    {"|<MASK>|", 903},
    {"<|endoftext|>", 10},
    {"<|eot_id|>", 11},
    {"<|im_end|>", 12},
    {"<|end_of_text|>", 13},
    {"<|my_mask|>", 950},
    {"<|tok_mask|>", 951},
    {"<|stop|>", 960},
    // The chat formats' tokens, so the built-in templates apply.
    {"<|start_header_id|>", 20},
    {"<|end_header_id|>", 21},
    {"<|im_start|>", 22},
};

std::vector<int32_t> sorted(std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

HfConfig config_of(std::string_view json) {
  return HfConfig::parse(json, "config.json");
}

const FamilyTraits& family_of(std::string_view model_type) {
  return identify_family(config_of(fmt::format(R"({{"model_type": "{}"}})", model_type)));
}

ModelOverlay user_overlay(std::string_view text) {
  return parse_model_overlay(text, "user.yaml");
}

// resolve_model_spec with the family's built-in overlay.
struct Resolve {
  std::string config = R"({"model_type": "llada"})";
  std::optional<std::string> generation_config;
  std::map<std::string, int32_t> tokens = kAllTokens;
  SpecialTokens special;
  std::optional<ModelOverlay> user;
  int64_t vocab_size = kVocab;

  ModelSpec operator()() const {
    const HfConfig hf = config_of(config);
    const FamilyTraits& family = identify_family(hf);
    std::optional<HfConfig> generation;
    if (generation_config) generation = HfConfig::parse(*generation_config, "generation_config.json");
    const FakeTokenizer tokenizer(tokens, special);
    return resolve_model_spec(family, hf, generation, tokenizer, vocab_size,
                              builtin_model_overlay(family.name), user ? &*user : nullptr);
  }
  std::string error() const {
    return input_error_of([&] { (*this)(); });
  }
};

// --- identify_family ---

TEST(ModelFamily, IdentifiesEveryModelType) {
  struct Case {
    std::string_view model_type;
    ModelFamily family;
    std::string_view name;
    CheckpointFormat format;
    DecodingKind decoding;
    VisibilityKind attention;
    std::string_view block_size_key;
  };
  using enum CheckpointFormat;
  using enum DecodingKind;
  using enum VisibilityKind;
  const Case cases[] = {
      {"llama", ModelFamily::Llama, "llama", HfLlama, Autoregressive, Causal, ""},
      {"qwen2", ModelFamily::Qwen2, "qwen2", HfQwen2, Autoregressive, Causal, ""},
      {"qwen3", ModelFamily::Qwen3, "qwen3", HfQwen3, Autoregressive, Causal, ""},
      {"llada", ModelFamily::Llada, "llada", Llada, MaskedDiffusion, Bidirectional, ""},
      {"Dream", ModelFamily::Dream, "dream", HfQwen2, MaskedDiffusion, Bidirectional, ""},
      {"sdar", ModelFamily::Sdar, "sdar", HfQwen3, BlockDiffusion, BlockCausal, "block_size"},
      {"Fast_dLLM_Qwen", ModelFamily::FastDllmV2, "fast_dllm_v2", HfQwen2, BlockDiffusion, BlockCausal,
       "bd_size"},
  };
  for (const Case& c : cases) {
    const FamilyTraits& family = family_of(c.model_type);
    EXPECT_EQ(family.family, c.family) << c.model_type;
    EXPECT_EQ(family.model_type, c.model_type);
    EXPECT_EQ(family.name, c.name) << c.model_type;
    EXPECT_EQ(family.format, c.format) << c.model_type;
    EXPECT_EQ(family.decoding, c.decoding) << c.model_type;
    EXPECT_EQ(family.attention, c.attention) << c.model_type;
    EXPECT_EQ(family.block_size_key, c.block_size_key) << c.model_type;
    EXPECT_FALSE(family.title.empty()) << c.model_type;
  }
}

TEST(ModelFamily, UnknownModelTypeListsSupportedOnes) {
  const std::string error = input_error_of([] { family_of("mistral"); });
  EXPECT_THAT(error, AllOf(HasSubstr("config.json"), HasSubstr("'mistral'"), HasSubstr("not supported")));
  for (std::string_view type : {"llama", "qwen2", "qwen3", "llada", "Dream", "sdar", "Fast_dLLM_Qwen"})
    EXPECT_THAT(error, HasSubstr(std::string(type)));
}

TEST(ModelFamily, MissingOrMistypedModelTypeNamesTheFile) {
  EXPECT_THAT(input_error_of([] { identify_family(config_of(R"({"hidden_size": 8})")); }),
              AllOf(HasSubstr("config.json"), HasSubstr("model_type")));
  EXPECT_THAT(input_error_of([] { identify_family(config_of(R"({"model_type": 3})")); }),
              AllOf(HasSubstr("config.json"), HasSubstr("model_type")));
}

TEST(ModelFamily, Names) {
  EXPECT_EQ(decoding_name(DecodingKind::Autoregressive), "autoregressive");
  EXPECT_EQ(decoding_name(DecodingKind::MaskedDiffusion), "masked diffusion");
  EXPECT_EQ(decoding_name(DecodingKind::BlockDiffusion), "block diffusion");
  EXPECT_EQ(visibility_name(VisibilityKind::Bidirectional), "bidirectional");
  EXPECT_EQ(visibility_name(VisibilityKind::Causal), "causal");
  EXPECT_EQ(visibility_name(VisibilityKind::BlockCausal), "block-causal");
  EXPECT_EQ(visibility_name(VisibilityKind::SlidingWindow), "sliding-window");
}

// --- architecture ---

TEST(ModelSpec, ArchitectureFromConfig) {
  Resolve resolve;
  resolve.config = R"({"model_type": "llada", "architectures": ["LLaDAModelLM", "Other"]})";
  EXPECT_EQ(resolve().architecture, "LLaDAModelLM");
  resolve.config = R"({"model_type": "llada"})";
  EXPECT_EQ(resolve().architecture, "llada");
  resolve.config = R"({"model_type": "Dream", "architectures": []})";
  EXPECT_EQ(resolve().architecture, "Dream");
  resolve.config = R"({"model_type": "qwen2", "architectures": null})";
  EXPECT_EQ(resolve().architecture, "qwen2");
  resolve.config = R"({"model_type": "qwen2", "architectures": "Qwen2ForCausalLM"})";
  EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("architectures")));
}

TEST(ModelSpec, FamilyPointsAtTraits) {
  Resolve resolve;
  resolve.config = R"({"model_type": "Dream"})";
  const ModelSpec spec = resolve();
  ASSERT_NE(spec.family, nullptr);
  EXPECT_EQ(spec.family->family, ModelFamily::Dream);
}

// --- mask token ---

TEST(ModelSpec, MaskFromBuiltinTextToken) {
  Resolve resolve;  // llada: <|mdm_mask|>
  EXPECT_THAT(resolve().mask_token_id, Optional(900));
  resolve.config = R"({"model_type": "Dream"})";
  EXPECT_THAT(resolve().mask_token_id, Optional(901));
  resolve.config = R"({"model_type": "sdar"})";
  EXPECT_THAT(resolve().mask_token_id, Optional(902));
  resolve.config = R"({"model_type": "Fast_dLLM_Qwen", "bd_size": 32})";
  EXPECT_THAT(resolve().mask_token_id, Optional(903));
}

TEST(ModelSpec, MaskPrecedence) {
  Resolve resolve;
  resolve.special.mask = 951;
  EXPECT_THAT(resolve().mask_token_id, Optional(951)) << "the tokenizer's mask beats the built-in text token";

  resolve.config = R"({"model_type": "llada", "mask_token_id": 126})";
  EXPECT_THAT(resolve().mask_token_id, Optional(126)) << "config.json beats the tokenizer";

  resolve.user = user_overlay("mask_token: \"<|my_mask|>\"\n");
  EXPECT_THAT(resolve().mask_token_id, Optional(950)) << "a user overlay beats config.json";

  resolve.user = user_overlay("mask_token_id: 7\n");
  EXPECT_THAT(resolve().mask_token_id, Optional(7));

  resolve.user = user_overlay("logit_shift: 0\n");
  EXPECT_THAT(resolve().mask_token_id, Optional(126)) << "a user overlay without a mask leaves it be";
}

TEST(ModelSpec, MaskIdZeroIsAMask) {
  Resolve resolve;
  resolve.config = R"({"model_type": "llada", "mask_token_id": 0})";
  EXPECT_THAT(resolve().mask_token_id, Optional(0));
}

TEST(ModelSpec, DiffusionFamilyWithoutMaskIsAnError) {
  for (std::string_view config :
       {R"({"model_type": "llada"})", R"({"model_type": "Dream"})",
        R"({"model_type": "sdar", "block_size": 4})", R"({"model_type": "Fast_dLLM_Qwen", "bd_size": 32})"}) {
    Resolve resolve;
    resolve.config = config;
    resolve.tokens = {{"<|endoftext|>", 10}};
    const std::string error = resolve.error();
    EXPECT_THAT(error, AllOf(HasSubstr("config.json"), HasSubstr("no mask token"), HasSubstr("mask_token"),
                             HasSubstr("configs/models/")))
        << config;
  }
}

TEST(ModelSpec, AutoregressiveFamilyNeedsNoMask) {
  for (std::string_view type : {"llama", "qwen2", "qwen3"}) {
    Resolve resolve;
    resolve.config = fmt::format(R"({{"model_type": "{}"}})", type);
    resolve.tokens = {{"<|endoftext|>", 10}};
    EXPECT_EQ(resolve().mask_token_id, std::nullopt) << type;
  }
}

TEST(ModelSpec, UserOverlayTokenMissingFromTokenizerIsAnError) {
  Resolve resolve;
  resolve.user = user_overlay("mask_token: \"<|nope|>\"\n");
  EXPECT_THAT(resolve.error(),
              AllOf(HasSubstr("user.yaml"), HasSubstr("'<|nope|>'"), HasSubstr("mask token")));

  resolve.user = user_overlay("stop_tokens: [\"<|eot_id|>\", \"<|gone|>\"]\n");
  EXPECT_THAT(resolve.error(),
              AllOf(HasSubstr("user.yaml"), HasSubstr("'<|gone|>'"), HasSubstr("stop token")));

  resolve.config = R"({"model_type": "llama"})";
  resolve.user = user_overlay("mask_token: \"<|nope|>\"\n");
  EXPECT_THAT(resolve.error(), HasSubstr("user.yaml")) << "even where the family needs no mask";
}

TEST(ModelSpec, BuiltinTokensMissingFromTokenizerAreSkipped) {
  Resolve resolve;  // llada's built-in stops: <|endoftext|>, <|eot_id|>
  resolve.tokens = {{"<|mdm_mask|>", 900}, {"<|endoftext|>", 10}};
  const ModelSpec spec = resolve();
  EXPECT_THAT(spec.stop_token_ids, ElementsAre(10));

  resolve.config = R"({"model_type": "llama"})";
  resolve.tokens = {{"<|end_of_text|>", 13}};  // a base model without <|eot_id|>
  EXPECT_THAT(resolve().stop_token_ids, ElementsAre(13));
}

// --- ids outside the vocabulary ---

TEST(ModelSpec, IdsOutsideTheVocabularyAreErrors) {
  {
    Resolve resolve;
    resolve.config = R"({"model_type": "llada", "mask_token_id": 1000})";
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("mask token"), HasSubstr("1000"),
                                       HasSubstr("vocabulary")));
    resolve.config = R"({"model_type": "llada", "mask_token_id": -1})";
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("-1")));
  }
  {
    Resolve resolve;
    resolve.user = user_overlay("mask_token_id: 5000\n");
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("user.yaml"), HasSubstr("mask token"), HasSubstr("5000")));
    resolve.user = user_overlay("stop_token_ids: [1, 1000]\n");
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("user.yaml"), HasSubstr("stop token"), HasSubstr("1000")));
  }
  {
    Resolve resolve;
    resolve.special.mask = 1001;
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("tokenizer"), HasSubstr("mask token"), HasSubstr("1001")));
  }
  {
    Resolve resolve;
    resolve.special.eos = 2000;
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("tokenizer"), HasSubstr("EOS"), HasSubstr("2000")));
  }
  {
    Resolve resolve;
    resolve.special.bos = 1000;
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("tokenizer"), HasSubstr("BOS"), HasSubstr("1000")));
  }
  {
    Resolve resolve;
    resolve.special.pad = -5;
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("tokenizer"), HasSubstr("padding"), HasSubstr("-5")));
  }
  {
    Resolve resolve;
    resolve.config = R"({"model_type": "llada", "eos_token_id": [10, 1234]})";
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("EOS"), HasSubstr("1234")));
  }
  {
    Resolve resolve;
    resolve.generation_config = R"({"eos_token_id": 1500})";
    EXPECT_THAT(resolve.error(),
                AllOf(HasSubstr("generation_config.json"), HasSubstr("EOS"), HasSubstr("1500")));
  }
  {
    // A built-in text token the tokenizer places past the model's vocabulary.
    Resolve resolve;
    resolve.tokens["<|mdm_mask|>"] = 1200;
    EXPECT_THAT(resolve.error(),
                AllOf(HasSubstr("configs/models/llada.yaml"), HasSubstr("mask token"), HasSubstr("1200")));
  }
  {
    // The vocabulary bound is the model's, not the tokenizer's.
    Resolve resolve;
    resolve.vocab_size = 905;
    EXPECT_THAT(resolve().mask_token_id, Optional(900));
    resolve.vocab_size = 900;
    EXPECT_THAT(resolve.error(), AllOf(HasSubstr("900"), HasSubstr("vocabulary")));
  }
}

// --- bos / pad ---

TEST(ModelSpec, BosAndPadFromTokenizer) {
  Resolve resolve;
  EXPECT_EQ(resolve().bos_token_id, std::nullopt);
  EXPECT_EQ(resolve().pad_token_id, std::nullopt);
  resolve.special.bos = 1;
  resolve.special.pad = 2;
  EXPECT_THAT(resolve().bos_token_id, Optional(1));
  EXPECT_THAT(resolve().pad_token_id, Optional(2));
}

// --- stop tokens ---

TEST(ModelSpec, StopTokensAreTheUnionWithTokenizerEosFirst) {
  Resolve resolve;  // llada's built-in stops: <|endoftext|> (10), <|eot_id|> (11)
  resolve.config = R"({"model_type": "llada", "eos_token_id": 7})";
  resolve.generation_config = R"({"eos_token_id": [8, 5, 7, 10]})";
  resolve.special.eos = 5;
  const ModelSpec spec = resolve();
  ASSERT_FALSE(spec.stop_token_ids.empty());
  EXPECT_EQ(spec.stop_token_ids.front(), 5) << "the tokenizer's EOS comes first";
  EXPECT_THAT(sorted(spec.stop_token_ids), ElementsAre(5, 7, 8, 10, 11)) << "each once";
}

TEST(ModelSpec, StopTokensFromConfigList) {
  Resolve resolve;
  resolve.config = R"({"model_type": "llama", "eos_token_id": [13, 20, 13]})";
  resolve.tokens = {};
  EXPECT_THAT(resolve().stop_token_ids, ElementsAre(13, 20));
  resolve.config = R"({"model_type": "llama", "eos_token_id": null})";
  EXPECT_TRUE(resolve().stop_token_ids.empty());
  resolve.config = R"({"model_type": "llama", "eos_token_id": "13"})";
  EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("eos_token_id")));
}

TEST(ModelSpec, StopTokensTokenizerEosFirstEvenWhenListedElsewhere) {
  Resolve resolve;
  resolve.config = R"({"model_type": "qwen2", "eos_token_id": [12, 10]})";
  resolve.special.eos = 10;
  EXPECT_THAT(resolve().stop_token_ids, ElementsAre(10, 12));
}

TEST(ModelSpec, UserStopTokensReplaceTheOthers) {
  Resolve resolve;
  resolve.config = R"({"model_type": "llada", "eos_token_id": 7})";
  resolve.generation_config = R"({"eos_token_id": [8]})";
  resolve.special.eos = 5;
  resolve.user = user_overlay("stop_tokens: [\"<|stop|>\"]\nstop_token_ids: [3, 960]\n");
  EXPECT_THAT(sorted(resolve().stop_token_ids), ElementsAre(3, 960));

  resolve.user = user_overlay("stop_token_ids: [4]\n");
  EXPECT_THAT(resolve().stop_token_ids, ElementsAre(4));

  resolve.user = user_overlay("mask_token_id: 950\n");
  EXPECT_THAT(sorted(resolve().stop_token_ids), ElementsAre(5, 7, 8, 10, 11))
      << "a user overlay without stop tokens keeps the union";
}

// --- block size and visibility ---

TEST(ModelSpec, VisibilityPerFamily) {
  struct Case {
    std::string_view config;
    VisibilityKind kind;
    int64_t block_size;
  };
  const Case cases[] = {
      {R"({"model_type": "llama"})", VisibilityKind::Causal, 0},
      {R"({"model_type": "qwen2"})", VisibilityKind::Causal, 0},
      {R"({"model_type": "qwen3", "block_size": 8})", VisibilityKind::Causal, 0},
      {R"({"model_type": "llada"})", VisibilityKind::Bidirectional, 0},
      {R"({"model_type": "Dream"})", VisibilityKind::Bidirectional, 0},
      {R"({"model_type": "sdar"})", VisibilityKind::BlockCausal, 4},
      {R"({"model_type": "Fast_dLLM_Qwen", "bd_size": 32})", VisibilityKind::BlockCausal, 32},
  };
  for (const Case& c : cases) {
    Resolve resolve;
    resolve.config = c.config;
    const ModelSpec spec = resolve();
    EXPECT_EQ(spec.visibility.kind, c.kind) << c.config;
    EXPECT_EQ(spec.visibility.block_size, c.block_size) << c.config;
    EXPECT_EQ(spec.block_size, c.block_size) << c.config;
  }
}

TEST(ModelSpec, SdarBlockSize) {
  Resolve resolve;
  resolve.config = R"({"model_type": "sdar"})";
  EXPECT_EQ(resolve().block_size, 4) << "the built-in overlay's default";
  resolve.config = R"({"model_type": "sdar", "block_size": 16})";
  EXPECT_EQ(resolve().block_size, 16) << "config.json beats the built-in overlay";
  EXPECT_EQ(resolve().visibility.block_size, 16);
  resolve.config = R"({"model_type": "sdar", "block_size": 16, "bd_size": 64})";
  EXPECT_EQ(resolve().block_size, 16) << "SDAR's key is block_size";
  resolve.user = user_overlay("block_size: 8\n");
  EXPECT_EQ(resolve().block_size, 8) << "a user overlay beats config.json";
  EXPECT_EQ(resolve().visibility.kind, VisibilityKind::BlockCausal);
  EXPECT_EQ(resolve().visibility.block_size, 8);
}

TEST(ModelSpec, FastDllmBlockSizeFromBdSize) {
  Resolve resolve;
  resolve.config = R"({"model_type": "Fast_dLLM_Qwen", "bd_size": 32, "block_size": 8})";
  EXPECT_EQ(resolve().block_size, 32) << "Fast-dLLM v2's key is bd_size";
  resolve.user = user_overlay("block_size: 2\n");
  EXPECT_EQ(resolve().block_size, 2);
  EXPECT_EQ(resolve().visibility.block_size, 2);
}

TEST(ModelSpec, BlockDiffusionWithoutBlockSizeIsAnError) {
  Resolve resolve;
  resolve.config = R"({"model_type": "Fast_dLLM_Qwen"})";
  EXPECT_THAT(resolve.error(),
              AllOf(HasSubstr("config.json"), HasSubstr("no block size"), HasSubstr("block_size")));
  resolve.user = user_overlay("block_size: 16\n");
  EXPECT_EQ(resolve().block_size, 16);
}

TEST(ModelSpec, BadConfigBlockSizeIsAnError) {
  Resolve resolve;
  resolve.config = R"({"model_type": "sdar", "block_size": 0})";
  EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("at least 1"), HasSubstr("0")));
  resolve.config = R"({"model_type": "Fast_dLLM_Qwen", "bd_size": -2})";
  EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("-2")));
  resolve.config = R"({"model_type": "sdar", "block_size": "4"})";
  EXPECT_THAT(resolve.error(), AllOf(HasSubstr("config.json"), HasSubstr("block_size")));
}

TEST(ModelSpec, BlockSizeIgnoredOutsideBlockDiffusion) {
  Resolve resolve;
  resolve.user = user_overlay("block_size: 16\n");
  const ModelSpec spec = resolve();  // llada
  EXPECT_EQ(spec.block_size, 0);
  EXPECT_EQ(spec.visibility.kind, VisibilityKind::Bidirectional);
}

// --- logit shift and chat template ---

TEST(ModelSpec, LogitShiftPrecedence) {
  Resolve resolve;
  EXPECT_EQ(resolve().logit_shift, 0) << "LLaDA does not shift";
  resolve.config = R"({"model_type": "Dream"})";
  EXPECT_EQ(resolve().logit_shift, 1) << "Dream's built-in overlay shifts";
  resolve.config = R"({"model_type": "Fast_dLLM_Qwen", "bd_size": 32})";
  EXPECT_EQ(resolve().logit_shift, 1);
  resolve.config = R"({"model_type": "sdar"})";
  EXPECT_EQ(resolve().logit_shift, 0);
  resolve.config = R"({"model_type": "Dream"})";
  resolve.user = user_overlay("logit_shift: 0\n");
  EXPECT_EQ(resolve().logit_shift, 0) << "a user overlay's explicit 0 beats the built-in 1";
  resolve.config = R"({"model_type": "llada"})";
  resolve.user = user_overlay("logit_shift: 1\n");
  EXPECT_EQ(resolve().logit_shift, 1);
  resolve.config = R"({"model_type": "Dream"})";
  resolve.user = user_overlay("block_size: 3\n");
  EXPECT_EQ(resolve().logit_shift, 1) << "a user overlay without logit_shift keeps the built-in";
}

TEST(ModelSpec, ChatTemplatePrecedence) {
  Resolve resolve;
  EXPECT_EQ(resolve().chat.user, "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>");
  resolve.config = R"({"model_type": "llama"})";
  EXPECT_TRUE(resolve().chat.empty()) << "no built-in template for Llama";
  const std::string inst =
      "chat: {system: \"{content}\\n\", user: \"[INST] {content} [/INST]\", "
      "assistant: \"{content}\", generation: \"\"}\n";
  resolve.user = user_overlay(inst);
  EXPECT_EQ(resolve().chat.user, "[INST] {content} [/INST]");
  resolve.config = R"({"model_type": "qwen3"})";
  EXPECT_EQ(resolve().chat.user, "[INST] {content} [/INST]") << "a user template beats the built-in";
  resolve.user = user_overlay("logit_shift: 0\n");
  EXPECT_EQ(resolve().chat.user, "<|im_start|>user\n{content}<|im_end|>\n");
}

TEST(ModelSpec, BuiltinChatTemplateNeedsItsTokens) {
  // A model of the family trained without its chat format (a base model, our own) gets no template.
  Resolve resolve;
  resolve.tokens.erase("<|start_header_id|>");
  EXPECT_TRUE(resolve().chat.empty()) << "llada's template names <|start_header_id|>";
  resolve.user = user_overlay(
      "chat: {system: \"{content}\", user: \"<|start_header_id|>{content}\", assistant: \"{content}\", "
      "generation: \"\"}\n");
  EXPECT_EQ(resolve().chat.user, "<|start_header_id|>{content}") << "a user template is taken as given";
}

TEST(ModelSpec, SamplerSectionsStackUserOverBuiltin) {
  Resolve resolve;
  EXPECT_TRUE(resolve().sampler_layers.empty()) << "no built-in overlay has a sampler section";
  resolve.user = user_overlay("sampler: {steps: 12}\n");
  const ModelSpec spec = resolve();
  ASSERT_EQ(spec.sampler_layers.size(), 1u);
  SamplingConfig sampling;
  read_sampler_keys(spec.sampler_layers[0], sampling);
  EXPECT_EQ(sampling.steps, 12);
}

TEST(RenderChat, EveryRoleInOrderThenTheGenerationPrompt) {
  const ChatTemplate chat{"<s>{content}</s>", "<u>{content}</u>", "<a>{content}</a>", "<a>", std::nullopt};
  const ChatMessage messages[] = {{ChatRole::System, "Be brief."},
                                  {ChatRole::User, "Hi"},
                                  {ChatRole::Assistant, "Hello"},
                                  {ChatRole::User, "say {content}"}};
  EXPECT_EQ(render_chat(chat, messages), "<s>Be brief.</s><u>Hi</u><a>Hello</a><u>say {content}</u><a>")
      << "a placeholder inside a message is text";
}

TEST(RenderChat, DefaultSystemOnlyWhenTheMessagesHaveNone) {
  const ChatTemplate chat{"<s>{content}</s>", "<u>{content}</u>", "<a>{content}</a>", "<a>",
                          std::string("You help.")};
  const ChatMessage plain[] = {{ChatRole::User, "Q"}};
  EXPECT_EQ(render_chat(chat, plain), "<s>You help.</s><u>Q</u><a>");
  const ChatMessage with_system[] = {{ChatRole::System, "Mine."}, {ChatRole::User, "Q"}};
  EXPECT_EQ(render_chat(chat, with_system), "<s>Mine.</s><u>Q</u><a>");
}

TEST(RenderChat, RefusesConversationsWithNothingToAnswer) {
  const ChatTemplate chat{"{content}", "{content}", "{content}", "", std::nullopt};
  EXPECT_THAT(input_error_of([&] { render_chat(chat, {}); }), HasSubstr("no messages"));
  const ChatMessage ends_with_assistant[] = {{ChatRole::User, "Q"}, {ChatRole::Assistant, "A"}};
  EXPECT_THAT(input_error_of([&] { render_chat(chat, ends_with_assistant); }), HasSubstr("end with a user"));
}

TEST(RenderChat, ResolvedBuiltinTemplate) {
  Resolve resolve;
  resolve.config = R"({"model_type": "qwen2"})";
  const ChatMessage question[] = {{ChatRole::User, "What is 2+2?"}};
  EXPECT_EQ(render_chat(resolve().chat, question),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is "
            "2+2?<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace dlm
