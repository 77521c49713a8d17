// Hugging Face tokenizer.json (byte-level BPE): golden encodings from the `tokenizers` library
// (tools/golden/tokenizer_json.py), hand-computed cases for each pre-tokenizer and model option, and the
// errors for malformed files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/error.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/unicode_nfc.h"

namespace dlm {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

const std::filesystem::path kGolden = std::filesystem::path(DLM_GOLDEN_DIR) / "tokenizer";

// ---- Golden data from Hugging Face tokenizers
// ----------------------------------------------------------------

class HfGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGolden, EncodeAndDecodeMatchTokenizers) {
  std::filesystem::path dir = kGolden / GetParam();
  std::filesystem::path cases_file = dir / "tokenizer_cases.json";
  ASSERT_TRUE(std::filesystem::exists(dir / "tokenizer.json") && std::filesystem::exists(cases_file))
      << "missing golden data in " << dir
      << ": run `python3 tools/golden/tokenizer_json.py` where the `tokenizers` package is installed";
  std::unique_ptr<BpeTokenizer> tokenizer = load_tokenizer_json(dir / "tokenizer.json");
  std::ifstream in(cases_file);
  json golden = json::parse(in);
  const json& cases = golden.at("cases");
  ASSERT_GT(cases.size(), 0u);
  size_t passed = 0;
  for (const json& c : cases) {
    std::string text = c.at("text").get<std::string>();
    Ids ids = c.at("ids").get<Ids>();
    Ids ids_plain = c.at("ids_plain").get<Ids>();
    std::string decoded = c.at("decoded").get<std::string>();
    Ids got = tokenizer->encode(text, SpecialText::Parse);
    Ids got_plain = tokenizer->encode(text, SpecialText::AsPlainText);
    std::string got_decoded = tokenizer->decode(ids);
    EXPECT_EQ(got, ids) << text;
    EXPECT_EQ(got_plain, ids_plain) << text;
    EXPECT_EQ(got_decoded, decoded) << text;
    passed += got == ids && got_plain == ids_plain && got_decoded == decoded;
  }
  EXPECT_EQ(passed, cases.size());
  std::cout << "tokenizer.json " << (GetParam().empty() ? "qwen2" : GetParam()) << ": " << passed << "/"
            << cases.size() << " cases passed (tokenizers " << golden.value("tokenizers_version", "?")
            << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Styles, HfGolden, ::testing::Values("", "llama3", "gpt2"), [](const auto& info) {
  return info.param.empty() ? std::string("qwen2") : info.param;
});

// ---- Hand-written tokenizer.json files
// -----------------------------------------------------------------------

// "Ġ" spells the space byte in the byte-level alphabet.
json byte_level(bool add_prefix_space = false, bool use_regex = false) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

json split(const std::string& literal, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", literal}}}, {"behavior", behavior}, {"invert", invert}};
}

json sequence(std::vector<json> steps) {
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

// A small vocabulary: a b c, a+b, ab+c, the space Ġ and its merges with a.
json tokenizer_json(json merges, json pre_tokenizer = byte_level()) {
  return {
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", nullptr},
      {"decoder", byte_level(true, true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab",
         {{"a", 0},
          {"b", 1},
          {"c", 2},
          {"ab", 3},
          {"abc", 4},
          {"Ġ", 5},
          {"Ġa", 6},
          {"aĠ", 7},
          {"ĠĠ", 8},
          {"aa", 9}}},
        {"merges", merges}}},
  };
}

json pair_merges() {
  return json::array({{"a", "b"}, {"ab", "c"}, {"a", "Ġ"}, {"Ġ", "a"}, {"Ġ", "Ġ"}, {"a", "a"}});
}
json string_merges() {
  return json::array({"a b", "ab c", "a Ġ", "Ġ a", "Ġ Ġ", "a a"});
}

std::unique_ptr<BpeTokenizer> parse(const json& j) {
  return parse_tokenizer_json(j.dump(), "hand.json");
}

Ids encode(const json& j, const std::string& text) {
  return parse(j)->encode(text, SpecialText::Parse);
}

TEST(TokenizerJson, MergesInStringAndPairFormAgree) {
  auto pairs = parse(tokenizer_json(pair_merges()));
  auto strings = parse(tokenizer_json(string_merges()));
  for (const std::string text : {"abc", "ab", "a a", "aaa", "cab ba", "  a", "abcabc"}) {
    EXPECT_EQ(pairs->encode(text, SpecialText::Parse), strings->encode(text, SpecialText::Parse)) << text;
  }
  // By rank: a+b (0) before ab+c (1); a+Ġ (2) before Ġ+a (3); equal pairs merge leftmost first.
  EXPECT_EQ(pairs->encode("abc", SpecialText::Parse), (Ids{4}));
  EXPECT_EQ(pairs->encode("a a", SpecialText::Parse), (Ids{7, 0}));
  EXPECT_EQ(pairs->encode("aaa", SpecialText::Parse), (Ids{9, 0}));
  EXPECT_EQ(pairs->encode("cab", SpecialText::Parse), (Ids{2, 3}));
  EXPECT_EQ(pairs->decode({4, 5, 7, 0}), "abc a a");
  EXPECT_EQ(pairs->id_to_token(6), "Ġa");
  EXPECT_EQ(pairs->token_to_id("ab"), 3);
  EXPECT_EQ(pairs->vocab_size(), 10);
  EXPECT_THROW(pairs->decode({10}), InputError);
}

TEST(TokenizerJson, IdsWithoutATokenAreGaps) {
  json j = tokenizer_json(pair_merges());
  j["model"]["vocab"].erase("aa");
  j["model"]["vocab"]["aa"] = 12;  // ids 9 to 11 are left without a token
  j["model"]["merges"] = json::array({{"a", "b"}, {"ab", "c"}});
  const auto tokenizer = parse(j);
  EXPECT_EQ(tokenizer->vocab_size(), 13);
  for (int32_t id : {0, 8, 12}) EXPECT_TRUE(tokenizer->has_id(id)) << id;
  for (int32_t id : {-1, 9, 10, 11, 13}) EXPECT_FALSE(tokenizer->has_id(id)) << id;
  EXPECT_THROW(tokenizer->decode({10}), InputError);
}

TEST(TokenizerJson, SplitBehaviours) {
  auto pieces = [](const std::string& behavior, bool invert, const std::string& text) {
    return encode(tokenizer_json(pair_merges(), sequence({split(" ", behavior, invert), byte_level()})),
                  text);
  };
  // "a a": the pieces decide which of the merges a+Ġ, Ġ+a can apply.
  EXPECT_EQ(pieces("Isolated", false, "a a"), (Ids{0, 5, 0}));             // a | Ġ | a
  EXPECT_EQ(pieces("Removed", false, "a a"), (Ids{0, 0}));                 // a | a
  EXPECT_EQ(pieces("MergedWithPrevious", false, "a a"), (Ids{7, 0}));      // aĠ | a
  EXPECT_EQ(pieces("MergedWithNext", false, "a a"), (Ids{0, 6}));          // a | Ġa
  EXPECT_EQ(pieces("Isolated", false, "a  a"), (Ids{0, 5, 5, 0}));         // a | Ġ | Ġ | a
  EXPECT_EQ(pieces("Contiguous", false, "a  a"), (Ids{0, 8, 0}));          // a | ĠĠ | a
  EXPECT_EQ(pieces("MergedWithPrevious", false, "a  a"), (Ids{7, 5, 0}));  // aĠ | Ġ | a: one delimiter joins
  EXPECT_EQ(pieces("MergedWithNext", false, "a  a"), (Ids{0, 5, 6}));      // a | Ġ | Ġa
  EXPECT_EQ(pieces("Removed", true, "a a"), (Ids{5}));                     // inverted: the a's are delimiters
  EXPECT_EQ(pieces("Isolated", false, ""), (Ids{}));
}

TEST(TokenizerJson, ByteLevelPrefixSpaceAndRegex) {
  // add_prefix_space puts a space before each piece that lacks one.
  EXPECT_EQ(encode(tokenizer_json(pair_merges(), byte_level(true, false)), "a"), (Ids{6}));
  EXPECT_EQ(encode(tokenizer_json(pair_merges(), byte_level(true, false)), " a"), (Ids{6}));
  EXPECT_EQ(encode(tokenizer_json(pair_merges(), sequence({split(" ", "Removed"), byte_level(true, false)})),
                   "a a"),
            (Ids{6, 6}));
  // use_regex applies GPT-2's pattern: " a" is one piece, so Ġ+a merges; without it a+Ġ (lower rank) wins.
  EXPECT_EQ(encode(tokenizer_json(pair_merges(), byte_level(false, true)), "a a"), (Ids{0, 6}));
  EXPECT_EQ(encode(tokenizer_json(pair_merges(), byte_level(false, false)), "a a"), (Ids{7, 0}));
}

TEST(TokenizerJson, IgnoreMergesTakesWholeTokens) {
  json j = tokenizer_json(json::array({{"a", "b"}, {"ab", "c"}}));
  j["model"]["vocab"]["bca"] = 10;  // no merge makes it
  j["model"]["vocab"]["bc"] = 11;
  j["model"]["merges"].push_back({"b", "c"});
  EXPECT_EQ(encode(j, "bca"), (Ids{11, 0}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(encode(j, "bca"), (Ids{10}));
  EXPECT_EQ(encode(j, "cab"), (Ids{2, 3}));
}

TEST(TokenizerJson, UnknownBytesUseByteFallbackOrUnk) {
  json j = tokenizer_json(pair_merges());
  // No "z", no fallback, no unk: the byte is dropped (as tokenizers does), and a, b then merge.
  EXPECT_EQ(encode(j, "azb"), (Ids{3}));
  j["model"]["vocab"]["<0x7A>"] = 10;
  j["model"]["byte_fallback"] = true;
  EXPECT_EQ(encode(j, "azb"), (Ids{0, 10, 1}));
  j["model"]["byte_fallback"] = false;
  j["model"]["vocab"]["<unk>"] = 11;
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(encode(j, "azzb"), (Ids{0, 11, 11, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(encode(j, "azzb"), (Ids{0, 11, 1}));
}

TEST(TokenizerJson, AddedTokenFlags) {
  json j = tokenizer_json(pair_merges());
  j["added_tokens"] = json::array({
      {{"id", 10}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 11}, {"content", "<m>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}},
      {{"id", 12}, {"content", "cc"}, {"special", false}, {"single_word", true}},
      {{"id", 13}, {"content", "<s>x"}, {"special", false}, {"normalized", false}},
      {{"id", 14}, {"content", "<s>xa"}, {"special", false}, {"normalized", true}},
      {{"id", 9}, {"content", "aa"}, {"special", false}},  // already in the vocab: keeps its id
  });
  auto tokenizer = parse(j);
  EXPECT_EQ(tokenizer->vocab_size(), 15);
  EXPECT_EQ(tokenizer->encode("a<s>b", SpecialText::Parse), (Ids{0, 10, 1}));
  // Leftmost-longest among the tokens matched in the raw text: "<s>x" wins over "<s>". The normalized
  // "<s>xa" is looked for afterwards, in what is left, so it never gets the chance.
  EXPECT_EQ(tokenizer->encode("<s>xa", SpecialText::Parse), (Ids{13, 0}));
  // lstrip/rstrip swallow the spaces around the token.
  EXPECT_EQ(tokenizer->encode("a  <m>  a", SpecialText::Parse), (Ids{0, 11, 0}));
  // single_word: only where no word character touches it.
  EXPECT_EQ(tokenizer->encode("a cc b", SpecialText::Parse), (Ids{7, 12, 5, 1}));  // aĠ | cc | Ġ b
  EXPECT_EQ(tokenizer->encode("acc", SpecialText::Parse), (Ids{0, 2, 2}));
  // As plain text, special tokens are not matched, but non-special added tokens still are.
  // ('<', 's', '>' are not in this vocabulary, so as plain text they are dropped and a, b merge.)
  EXPECT_EQ(tokenizer->encode("a<s>b", SpecialText::AsPlainText), (Ids{3}));
  EXPECT_EQ(tokenizer->encode("a cc", SpecialText::AsPlainText), (Ids{7, 12}));
  // The added "aa" is matched before the BPE sees the text, so a+a (rank 5) does not decide.
  EXPECT_EQ(tokenizer->encode("aaa", SpecialText::Parse), (Ids{9, 0}));
  EXPECT_EQ(tokenizer->decode({10, 0, 11}), "<s>a<m>");
  EXPECT_EQ(tokenizer->token_to_id("<m>"), 11);
  EXPECT_THROW(tokenizer->decode({15}), InputError);

  // Tokenizers gives added tokens their ids itself; a file with other ids is rejected.
  j["added_tokens"][0]["id"] = 20;
  EXPECT_THROW(parse(j), InputError);
}

// Examples from Unicode's NormalizationTest.txt (NFC column).
TEST(TokenizerJson, NfcNormalization) {
  EXPECT_EQ(nfc_normalize("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc_normalize("A\u030a"), "\u00c5");
  EXPECT_EQ(nfc_normalize("\u212b"), "\u00c5");               // singleton decomposition
  EXPECT_EQ(nfc_normalize("\u1100\u1161\u11a8"), "\uac01");   // Hangul L V T
  EXPECT_EQ(nfc_normalize("a\u0301\u0328"), "\u0105\u0301");  // reordered by combining class
  EXPECT_EQ(nfc_normalize("\u0958"), "\u0915\u093c");         // excluded from composition
  EXPECT_EQ(nfc_normalize("\u1e0b\u0323"), "\u1e0d\u0307");   // d + dot above + dot below
  EXPECT_EQ(nfc_normalize("plain ASCII text"), "plain ASCII text");
  EXPECT_EQ(nfc_normalize("bad \xFF byte e\u0301"), "bad \xFF byte \u00e9");  // bytes kept
}

// ---- Malformed files
// -----------------------------------------------------------------------------------------

void expect_error(const std::string& text, const std::string& fault) {
  try {
    parse_tokenizer_json(text, "bad_tokenizer.json");
    ADD_FAILURE() << "accepted: " << text.substr(0, 200);
  } catch (const InputError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("bad_tokenizer.json"), std::string::npos) << message;
    EXPECT_NE(message.find(fault), std::string::npos) << "expected '" << fault << "' in: " << message;
  }
}

TEST(TokenizerJson, MalformedFilesAreInputErrorsNamingTheFault) {
  json good = tokenizer_json(pair_merges());
  ASSERT_NO_THROW(parse(good));

  expect_error("{not json", "invalid JSON");
  expect_error("[1, 2]", "not an object");
  json j = good;
  j.erase("model");
  expect_error(j.dump(), "has no \"model\"");
  j = good;
  j["model"]["type"] = "WordPiece";
  expect_error(j.dump(), "model type 'WordPiece'");
  expect_error(j.dump(), "unsupported");
  j["model"]["type"] = "Unigram";
  expect_error(j.dump(), "model type 'Unigram' (only byte-level BPE) is unsupported");
  j = good;
  j["model"].erase("vocab");
  expect_error(j.dump(), "model has no \"vocab\"");
  j = good;
  j["model"]["merges"].push_back({"a", "zz"});
  expect_error(j.dump(), "merge 6 'a zz' refers to unknown token 'zz'");
  j = good;
  j["model"]["merges"].push_back({"b", "a"});
  expect_error(j.dump(), "makes 'ba', which is not in the vocab");
  j = good;
  j["model"]["merges"].push_back("a b c");
  expect_error(j.dump(), "is not two tokens separated by one space");
  j = good;
  j["model"]["vocab"]["dup"] = 3;
  expect_error(j.dump(), "id 3 is given to both");
  j = good;
  j["model"]["vocab"]["neg"] = -4;
  expect_error(j.dump(), "has id -4");
  j = good;
  j["model"]["vocab"]["a"] = "zero";
  expect_error(j.dump(), "not an integer");
  j = good;
  j["pre_tokenizer"] = sequence(
      {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}, byte_level()});
  expect_error(j.dump(), "invalid regex '(unclosed'");
  j = good;
  j["pre_tokenizer"] = sequence({split(" ", "Sideways"), byte_level()});
  expect_error(j.dump(), "Split behavior 'Sideways' is unknown");
  j = good;
  j["pre_tokenizer"] = sequence({byte_level(), split(" ", "Isolated")});
  expect_error(j.dump(), "after ByteLevel");
  j = good;
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(j.dump(), "pre_tokenizer 'Metaspace'");
  j = good;
  j["pre_tokenizer"] = nullptr;
  expect_error(j.dump(), "without ByteLevel");
  j = good;
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j.dump(), "decoder 'WordPiece'");
  j = good;
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(j.dump(), "normalizer 'Lowercase'");
  j = good;
  j["added_tokens"] = json::array({{{"content", "<x>"}}});
  expect_error(j.dump(), "added token has no \"id\"");
  j["added_tokens"] = json::array({{{"content", "<x>"}, {"id", 12}}});
  expect_error(j.dump(), "added token '<x>' has id 12, but its id is 10");
  j = good;
  j["model"]["unk_token"] = "<unk>";
  expect_error(j.dump(), "unk_token '<unk>' is not in the vocab");
  j = good;
  j["model"]["dropout"] = 0.1;
  expect_error(j.dump(), "dropout");

  EXPECT_THROW(load_tokenizer_json(kGolden / "no_such_tokenizer.json"), InputError);
}

// ---- The factory over a model directory
// ---------------------------------------------------------------------

TEST(LoadTokenizer, TokenizerJsonDirectoryWithConfigs) {
  ASSERT_TRUE(std::filesystem::exists(kGolden / "tokenizer.json"))
      << "run `python3 tools/golden/tokenizer_json.py` where the `tokenizers` package is installed";
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "dlm_tokenizer_json_dir";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kGolden / "tokenizer.json", dir / "tokenizer.json");
  std::ofstream(dir / "special_tokens_map.json") << R"({"eos_token": "<|endoftext|>", "bos_token": null})";
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"eos_token": "<|im_end|>", "pad_token": {"content": "<|endoftext|>", "special": true},
            "mask_token": "<|mdm_mask|>"})";
  std::ofstream(dir / "config.json") << R"({"bos_token_id": 1, "eos_token_id": 0, "pad_token_id": -1})";
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
  const SpecialTokens& special = tokenizer->special_tokens();
  EXPECT_EQ(special.bos, 1);   // config.json
  EXPECT_EQ(special.eos, 2);   // tokenizer_config.json's <|im_end|> last
  EXPECT_EQ(special.pad, 0);   // <|endoftext|>
  EXPECT_EQ(special.mask, 3);  // <|mdm_mask|>
  EXPECT_EQ(special.unk, std::nullopt);
  EXPECT_EQ(tokenizer->encode("<|mdm_mask|>", SpecialText::Parse), (Ids{3}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dlm
