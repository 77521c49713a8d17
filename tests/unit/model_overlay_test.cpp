#include "backbones/model_overlay.h"
#include "engine/io/generation_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "engine/core/error.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

// The families with a built-in overlay, by FamilyTraits::name.
const std::vector<std::string> kFamilyNames = {"llama", "qwen2", "qwen3",       "llada",
                                               "dream", "sdar",  "fast_dllm_v2"};

const std::filesystem::path kModelConfigDir =
    std::filesystem::path(DLM_TEST_DATA_DIR) / ".." / ".." / "configs" / "models";

ModelOverlay parse(std::string_view text) {
  return parse_model_overlay(text, "overlay.yaml");
}

std::string parse_error(std::string_view text) {
  return input_error_of([&] { parse(text); });
}

TEST(ModelOverlay, ParsesEveryKey) {
  const ModelOverlay overlay = parse(R"(# a comment
mask_token: "<|mdm_mask|>"
stop_tokens: ["<|eot_id|>", "<|endoftext|>"]
stop_token_ids: [126081, 7]
logit_shift: 1
block_size: 32
chat:
  system: "<s>{content}</s>"
  user: "<u>{content}</u>"
  assistant: "<a>{content}</a>"
  generation: "<a>"
  default_system: "Be brief."
sampler:
  steps: 64
  commit: threshold
)");
  EXPECT_EQ(overlay.source, "overlay.yaml");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("<|mdm_mask|>")));
  EXPECT_EQ(overlay.mask_token_id, std::nullopt);
  EXPECT_THAT(overlay.stop_tokens, ElementsAre("<|eot_id|>", "<|endoftext|>"));
  EXPECT_THAT(overlay.stop_token_ids, ElementsAre(126081, 7));
  EXPECT_THAT(overlay.logit_shift, Optional(int64_t{1}));
  EXPECT_THAT(overlay.block_size, Optional(int64_t{32}));
  ASSERT_TRUE(overlay.chat.has_value());
  EXPECT_EQ(*overlay.chat, (ChatTemplate{"<s>{content}</s>", "<u>{content}</u>", "<a>{content}</a>", "<a>",
                                         std::string("Be brief.")}));
  ASSERT_TRUE(overlay.sampler.has_value());
  SamplingConfig sampling;
  read_sampler_keys(*overlay.sampler, sampling);
  EXPECT_EQ(sampling.steps, 64);
  EXPECT_EQ(sampling.commit, CommitRule::Threshold);
  EXPECT_EQ(sampling.gen_length, SamplingConfig{}.gen_length) << "keys the section lacks keep their value";
}

TEST(ModelOverlay, SamplerSectionIsChecked) {
  EXPECT_THAT(parse_error("sampler:\n  stpes: 4\n"),
              AllOf(HasSubstr("overlay.yaml"), HasSubstr("stpes"), HasSubstr("line 2")));
  EXPECT_THAT(parse_error("sampler:\n  method: dream\n  cfg_scale: 2.0\n"),
              AllOf(HasSubstr("overlay.yaml"), HasSubstr("cfg_scale"), HasSubstr("needs method llada")));
}

TEST(ModelOverlay, MaskTokenById) {
  const ModelOverlay overlay = parse("mask_token_id: 126336\nlogit_shift: 0\n");
  EXPECT_THAT(overlay.mask_token_id, Optional(int64_t{126336}));
  EXPECT_EQ(overlay.mask_token, std::nullopt);
  EXPECT_THAT(overlay.logit_shift, Optional(int64_t{0})) << "an explicit 0 is kept, not read as absent";
  const ModelOverlay zero = parse("mask_token_id: 0\n");
  EXPECT_THAT(zero.mask_token_id, Optional(int64_t{0}));
}

TEST(ModelOverlay, EmptyDocumentIsEmptyOverlay) {
  for (std::string_view text : {"", "# only a comment\n"}) {
    const ModelOverlay overlay = parse(text);
    EXPECT_EQ(overlay.source, "overlay.yaml");
    EXPECT_EQ(overlay.mask_token, std::nullopt);
    EXPECT_EQ(overlay.mask_token_id, std::nullopt);
    EXPECT_TRUE(overlay.stop_tokens.empty());
    EXPECT_TRUE(overlay.stop_token_ids.empty());
    EXPECT_EQ(overlay.logit_shift, std::nullopt);
    EXPECT_EQ(overlay.block_size, std::nullopt);
    EXPECT_EQ(overlay.chat, std::nullopt);
    EXPECT_EQ(overlay.sampler.has_value(), false);
  }
}

TEST(ModelOverlay, QuotedNumberIsATokenText) {
  // A mask token's text may look like a number; it stays text.
  const ModelOverlay overlay = parse("mask_token: \"5\"\n");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("5")));
}

TEST(ModelOverlay, UnknownKeyNamesKeyAndLine) {
  const std::string error = parse_error("mask_token: \"<m>\"\nblock_size: 4\nmask_tokn: x\n");
  EXPECT_THAT(error, AllOf(HasSubstr("overlay.yaml"), HasSubstr("unknown key 'mask_tokn'"),
                           HasSubstr("line 3"), HasSubstr("mask_token"), HasSubstr("chat")));
}

TEST(ModelOverlay, MaskTokenTextAndIdTogetherRejected) {
  const std::string error = parse_error("mask_token: \"<|mask|>\"\nmask_token_id: 151666\n");
  EXPECT_THAT(error, AllOf(HasSubstr("overlay.yaml"), HasSubstr("mask_token_id"), HasSubstr("not both"),
                           HasSubstr("line 2")));
}

TEST(ModelOverlay, NegativeIdsRejected) {
  EXPECT_THAT(parse_error("mask_token_id: -1\n"), AllOf(HasSubstr("overlay.yaml"), HasSubstr("mask_token_id"),
                                                        HasSubstr("negative"), HasSubstr("line 1")));
  EXPECT_THAT(parse_error("logit_shift: 0\nstop_token_ids: [3, -2]\n"),
              AllOf(HasSubstr("overlay.yaml"), HasSubstr("stop_token_ids"), HasSubstr("negative"),
                    HasSubstr("line 2")));
}

TEST(ModelOverlay, LogitShiftMustBeZeroOrOne) {
  for (std::string_view text : {"logit_shift: 2\n", "logit_shift: -1\n"}) {
    EXPECT_THAT(parse_error(text), AllOf(HasSubstr("overlay.yaml"), HasSubstr("logit_shift"),
                                         HasSubstr("must be 0 or 1"), HasSubstr("line 1")))
        << text;
  }
}

TEST(ModelOverlay, BlockSizeMustBePositive) {
  for (std::string_view text : {"block_size: 0\n", "block_size: -4\n"}) {
    EXPECT_THAT(parse_error(text), AllOf(HasSubstr("overlay.yaml"), HasSubstr("block_size"),
                                         HasSubstr("at least 1"), HasSubstr("line 1")))
        << text;
  }
  EXPECT_THAT(parse("block_size: 1\n").block_size, Optional(int64_t{1}));
}

TEST(ModelOverlay, ChatTurnsNeedContentPlaceholder) {
  EXPECT_THAT(
      parse_error("block_size: 2\nchat:\n  system: \"{content}\"\n  user: \"<u>{contnt}</u>\"\n"
                  "  assistant: \"{content}\"\n  generation: \"\"\n"),
      AllOf(HasSubstr("overlay.yaml"), HasSubstr("chat.user"), HasSubstr("{content}"), HasSubstr("line 4")));
  EXPECT_THAT(parse_error("chat:\n  system: \"{content}\"\n  user: \"{content}\"\n  generation: \"\"\n"),
              AllOf(HasSubstr("overlay.yaml"), HasSubstr("assistant")))
      << "every role needs its template";
}

TEST(ModelOverlay, WrongTypesRejected) {
  struct Case {
    std::string_view text;
    std::string_view key;
    std::string_view expected;
  };
  const Case cases[] = {
      {"mask_token_id: abc\n", "mask_token_id", "expected an integer"},
      {"mask_token_id: \"126336\"\n", "mask_token_id", "expected an integer"},
      {"mask_token: [a, b]\n", "mask_token", "expected a string"},
      {"stop_tokens: \"<|eot_id|>\"\n", "stop_tokens", "expected a sequence"},
      {"stop_token_ids: [1, two]\n", "stop_token_ids", "expected an integer"},
      {"logit_shift: true\n", "logit_shift", "expected an integer"},
      {"block_size: 2.5\n", "block_size", "expected an integer"},
      {"chat: [a, b]\n", "chat", "expected a map"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(parse_error(c.text), AllOf(HasSubstr("overlay.yaml"), HasSubstr(std::string(c.key)),
                                           HasSubstr(std::string(c.expected)), HasSubstr("line 1")))
        << c.text;
  }
}

TEST(ModelOverlay, NullValueRejected) {
  EXPECT_THAT(parse_error("block_size:\n"), AllOf(HasSubstr("overlay.yaml"), HasSubstr("block_size")));
}

TEST(ModelOverlay, NotAMappingRejected) {
  EXPECT_THAT(parse_error("- mask_token\n- stop_tokens\n"), HasSubstr("overlay.yaml"));
}

TEST(ModelOverlay, LoadsFromFile) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("dlm_model_overlay_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "mask_token_id: 42\nstop_token_ids: [1]\n";
  }
  const ModelOverlay overlay = load_model_overlay(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(overlay.source, path.string());
  EXPECT_THAT(overlay.mask_token_id, Optional(int64_t{42}));
  EXPECT_THAT(overlay.stop_token_ids, ElementsAre(1));
}

TEST(ModelOverlay, LoadErrorsNameTheFile) {
  const std::string missing = (std::filesystem::temp_directory_path() / "dlm_no_such_overlay.yaml").string();
  EXPECT_THAT(input_error_of([&] { load_model_overlay(missing); }), HasSubstr(missing));

  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("dlm_model_overlay_bad_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "logit_shift: 3\n";
  }
  const std::string error = input_error_of([&] { load_model_overlay(path.string()); });
  std::filesystem::remove(path);
  EXPECT_THAT(error, AllOf(HasSubstr(path.string()), HasSubstr("logit_shift")));
}

TEST(BuiltinModelOverlay, EveryFamilyParsesAndNamesItsFile) {
  for (const std::string& family : kFamilyNames) {
    const ModelOverlay overlay = builtin_model_overlay(family);
    EXPECT_EQ(overlay.source, "configs/models/" + family + ".yaml");
    EXPECT_FALSE(overlay.stop_tokens.empty()) << family;
    EXPECT_TRUE(overlay.stop_token_ids.empty()) << family << ": built-ins name tokens by text";
    EXPECT_EQ(overlay.mask_token_id, std::nullopt) << family;
  }
}

TEST(BuiltinModelOverlay, MatchesTheFilesOnDisk) {
  // The compiled-in text is the file's: a stale or truncated embedding shows up here.
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(kModelConfigDir)) {
    if (entry.path().extension() == ".yaml") on_disk.insert(entry.path().stem().string());
  }
  EXPECT_EQ(on_disk, std::set<std::string>(kFamilyNames.begin(), kFamilyNames.end()));
  for (const std::string& family : on_disk) {
    const ModelOverlay builtin = builtin_model_overlay(family);
    const ModelOverlay file = load_model_overlay((kModelConfigDir / (family + ".yaml")).string());
    EXPECT_EQ(builtin.mask_token, file.mask_token) << family;
    EXPECT_EQ(builtin.mask_token_id, file.mask_token_id) << family;
    EXPECT_EQ(builtin.stop_tokens, file.stop_tokens) << family;
    EXPECT_EQ(builtin.stop_token_ids, file.stop_token_ids) << family;
    EXPECT_EQ(builtin.logit_shift, file.logit_shift) << family;
    EXPECT_EQ(builtin.block_size, file.block_size) << family;
    EXPECT_EQ(builtin.chat, file.chat) << family;
  }
}

TEST(BuiltinModelOverlay, Llada) {
  const ModelOverlay overlay = builtin_model_overlay("llada");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("<|mdm_mask|>")));
  EXPECT_THAT(overlay.stop_tokens, ElementsAre("<|endoftext|>", "<|eot_id|>"));
  EXPECT_EQ(overlay.logit_shift, std::nullopt);
  EXPECT_EQ(overlay.block_size, std::nullopt);
  ASSERT_TRUE(overlay.chat.has_value());
  EXPECT_EQ(overlay.chat->user, "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>");
  EXPECT_EQ(overlay.chat->generation, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(overlay.chat->default_system, std::nullopt);
}

TEST(BuiltinModelOverlay, Dream) {
  const ModelOverlay overlay = builtin_model_overlay("dream");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("<|mask|>")));
  EXPECT_THAT(overlay.logit_shift, Optional(int64_t{1}));
  EXPECT_EQ(overlay.block_size, std::nullopt);
  EXPECT_THAT(overlay.stop_tokens, ElementsAre("<|endoftext|>", "<|im_end|>"));
  ASSERT_TRUE(overlay.chat.has_value());
  EXPECT_EQ(overlay.chat->user, "<|im_start|>user\n{content}<|im_end|>\n");
  EXPECT_THAT(overlay.chat->default_system, Optional(std::string("You are a helpful assistant.")));
}

TEST(BuiltinModelOverlay, Sdar) {
  const ModelOverlay overlay = builtin_model_overlay("sdar");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("<|MASK|>")));
  EXPECT_THAT(overlay.block_size, Optional(int64_t{4}));
  EXPECT_EQ(overlay.logit_shift, std::nullopt) << "SDAR does not shift its logits";
  EXPECT_THAT(overlay.stop_tokens, ElementsAre("<|im_end|>", "<|endoftext|>"));
}

TEST(BuiltinModelOverlay, FastDllmV2) {
  const ModelOverlay overlay = builtin_model_overlay("fast_dllm_v2");
  EXPECT_THAT(overlay.mask_token, Optional(std::string("|<MASK>|")));
  EXPECT_THAT(overlay.logit_shift, Optional(int64_t{1}));
  EXPECT_EQ(overlay.block_size, std::nullopt) << "the block comes from config.json's bd_size";
  EXPECT_THAT(overlay.stop_tokens, ElementsAre("<|im_end|>"));
}

TEST(BuiltinModelOverlay, AutoregressiveFamiliesHaveNoMask) {
  for (std::string_view family : {"llama", "qwen2", "qwen3"}) {
    const ModelOverlay overlay = builtin_model_overlay(family);
    EXPECT_EQ(overlay.mask_token, std::nullopt) << family;
    EXPECT_EQ(overlay.logit_shift, std::nullopt) << family;
    EXPECT_EQ(overlay.block_size, std::nullopt) << family;
  }
  EXPECT_THAT(builtin_model_overlay("llama").stop_tokens, ElementsAre("<|eot_id|>", "<|end_of_text|>"));
  EXPECT_EQ(builtin_model_overlay("llama").chat, std::nullopt) << "Llama 2 and 3 chat formats differ";
  EXPECT_THAT(builtin_model_overlay("qwen2").stop_tokens, ElementsAre("<|im_end|>", "<|endoftext|>"));
  ASSERT_TRUE(builtin_model_overlay("qwen3").chat.has_value());
  EXPECT_EQ(builtin_model_overlay("qwen3").chat->generation, "<|im_start|>assistant\n");
  EXPECT_EQ(builtin_model_overlay("qwen3").chat->default_system, std::nullopt)
      << "Qwen3 has no default system";
}

TEST(BuiltinModelOverlay, UnknownFamilyIsEmpty) {
  for (std::string_view family : {"mistral", "", "Dream", "llada.yaml"}) {
    const ModelOverlay overlay = builtin_model_overlay(family);
    EXPECT_FALSE(overlay.source.empty()) << "errors still need a name for it";
    EXPECT_EQ(overlay.mask_token, std::nullopt) << family;
    EXPECT_EQ(overlay.mask_token_id, std::nullopt) << family;
    EXPECT_TRUE(overlay.stop_tokens.empty()) << family;
    EXPECT_TRUE(overlay.stop_token_ids.empty()) << family;
    EXPECT_EQ(overlay.logit_shift, std::nullopt) << family;
    EXPECT_EQ(overlay.block_size, std::nullopt) << family;
    EXPECT_EQ(overlay.chat, std::nullopt) << family;
  }
}

}  // namespace
}  // namespace dlm
