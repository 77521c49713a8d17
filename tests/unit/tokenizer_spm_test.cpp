// SentencePiece models through the Tokenizer interface, checked against the spm_encode / spm_decode CLIs
// (golden files written by tools/make_spm_fixture.sh).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "engine/core/utf8.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"

namespace dlm {
namespace {

const std::filesystem::path kData = std::filesystem::path(DLM_TEST_DATA_DIR) / "tokenizer";

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing " << path << " (run tools/make_spm_fixture.sh)";
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_spaces(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> parts;
  for (std::string part; in >> part;) parts.push_back(part);
  return parts;
}

const SentencePieceTokenizer& fixture() {
  static const SentencePieceTokenizer tokenizer(kData / "spm_bpe.model");
  return tokenizer;
}

TEST(SentencePiece, SpecialTokensComeFromTheModel) {
  const SentencePieceTokenizer& spm = fixture();
  EXPECT_EQ(spm.vocab_size(), 600);
  const SpecialTokens& special = spm.special_tokens();
  EXPECT_EQ(special.unk, 0);
  EXPECT_EQ(special.bos, 1);
  EXPECT_EQ(special.eos, 2);
  EXPECT_EQ(special.pad, 3);
  EXPECT_EQ(special.mask, std::nullopt);  // SentencePiece has no mask; model configs name it
  EXPECT_EQ(spm.token_to_id("<mask>"), 4);
  EXPECT_EQ(spm.token_to_id("<sep>"), 5);
  EXPECT_EQ(spm.token_to_id("<unk>"), 0);
  EXPECT_EQ(spm.token_to_id("<0x41>"), 6 + 0x41);  // byte pieces follow the meta pieces
  EXPECT_EQ(spm.token_to_id("no such piece"), std::nullopt);
  EXPECT_EQ(spm.id_to_token(2), "</s>");
}

TEST(SentencePiece, EncodingsMatchSpmEncode) {
  const SentencePieceTokenizer& spm = fixture();
  std::vector<std::string> texts = read_lines(kData / "spm_cases.txt");
  std::vector<std::string> ids = read_lines(kData / "spm_cases.ids");
  std::vector<std::string> pieces = read_lines(kData / "spm_cases.pieces");
  std::vector<std::string> decoded = read_lines(kData / "spm_cases.decoded");
  ASSERT_GT(texts.size(), 0u);
  ASSERT_EQ(ids.size(), texts.size());
  ASSERT_EQ(pieces.size(), texts.size());
  ASSERT_EQ(decoded.size(), texts.size());
  size_t passed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> expected;
    for (const std::string& id : split_spaces(ids[i])) expected.push_back(std::stoi(id));
    std::vector<int32_t> got = spm.encode(texts[i], SpecialText::AsPlainText);
    EXPECT_EQ(got, expected) << texts[i];
    std::vector<std::string> expected_pieces = split_spaces(pieces[i]);
    ASSERT_EQ(expected_pieces.size(), expected.size());
    for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(spm.id_to_token(expected[k]), expected_pieces[k]);
    EXPECT_EQ(spm.decode(expected), decoded[i]);
    passed += got == expected && spm.decode(expected) == decoded[i];
  }
  EXPECT_EQ(passed, texts.size());
  std::cout << "spm_encode/spm_decode: " << passed << "/" << texts.size() << " cases passed\n";
}

TEST(SentencePiece, ControlTokensParsedOrPlain) {
  const SentencePieceTokenizer& spm = fixture();
  const std::string text = "<mask> and <s> are written as text here";
  // As plain text this is the spm_encode line (checked above): '<' and '>' become byte pieces.
  std::vector<int32_t> plain = spm.encode(text, SpecialText::AsPlainText);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 4), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  // Parsed, the control pieces become their ids and each stretch between them is encoded on its own.
  std::vector<int32_t> expected = {4};
  for (int32_t id : spm.encode(" and ", SpecialText::AsPlainText)) expected.push_back(id);
  expected.push_back(1);
  for (int32_t id : spm.encode(" are written as text here", SpecialText::AsPlainText)) expected.push_back(id);
  EXPECT_EQ(spm.encode(text, SpecialText::Parse), expected);
  // A user-defined symbol is always one piece, as SentencePiece matches it itself.
  for (SpecialText mode : {SpecialText::Parse, SpecialText::AsPlainText}) {
    std::vector<int32_t> ids = spm.encode("a<sep>b", mode);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 5), 1);
  }
}

TEST(SentencePiece, DecodeWritesControlTokensAndRepairsBytes) {
  const SentencePieceTokenizer& spm = fixture();
  std::vector<int32_t> hello = spm.encode("Hello", SpecialText::AsPlainText);
  std::vector<int32_t> ids = {1};
  ids.insert(ids.end(), hello.begin(), hello.end());
  ids.push_back(2);
  EXPECT_EQ(spm.decode(ids), "<s>Hello</s>");

  // Byte pieces that make a whole character are joined; a lone lead byte becomes U+FFFD.
  int32_t e2 = *spm.token_to_id("<0xE2>"), x98 = *spm.token_to_id("<0x98>"), x83 = *spm.token_to_id("<0x83>");
  EXPECT_EQ(spm.decode({e2, x98, x83}), "☃");
  std::string broken = spm.decode({hello[0], e2, hello.back()});
  EXPECT_TRUE(is_valid_utf8(broken));
  EXPECT_NE(broken.find("\uFFFD"), std::string::npos);
}

// SentencePiece reads text as UTF-8 and replaces each malformed byte by U+FFFD before encoding, so such
// text does not round-trip: it comes back with U+FFFD in place of the bad bytes.
TEST(SentencePiece, InvalidUtf8BecomesReplacementCharacters) {
  const SentencePieceTokenizer& spm = fixture();
  std::vector<int32_t> ids = spm.encode(
      "ab\xFF\xFE"
      "cd",
      SpecialText::Parse);
  EXPECT_EQ(spm.decode(ids),
            "ab\uFFFD\uFFFD"
            "cd");
}

TEST(SentencePiece, EmptyAndLongInputs) {
  const SentencePieceTokenizer& spm = fixture();
  EXPECT_TRUE(spm.encode("", SpecialText::Parse).empty());
  EXPECT_EQ(spm.decode({}), "");
  std::ifstream in(kData / "corpus.txt", std::ios::binary);
  std::ostringstream corpus;
  corpus << in.rdbuf();
  std::string text;
  while (text.size() < 200'000) text += corpus.str();
  // Lines one by one, as a model would see prompts (a corpus file ends with a newline).
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    ASSERT_EQ(spm.decode(spm.encode(line, SpecialText::AsPlainText)), line);
  }
}

TEST(SentencePiece, BadIdsAndFilesAreInputErrors) {
  const SentencePieceTokenizer& spm = fixture();
  EXPECT_THROW(spm.decode({600}), InputError);
  EXPECT_THROW(spm.decode({-1}), InputError);
  EXPECT_THROW(spm.id_to_token(600), InputError);
  EXPECT_THROW(SentencePieceTokenizer(kData / "no_such.model"), InputError);
  try {
    SentencePieceTokenizer corrupt(kData / "corpus.txt");
    ADD_FAILURE() << "a text file loaded as a model";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("corpus.txt"), std::string::npos) << e.what();
  }
}

class TempDir {
 public:
  explicit TempDir(const std::string& name) : path_(std::filesystem::temp_directory_path() / name) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& file, const std::string& text) const { std::ofstream(path_ / file) << text; }

 private:
  std::filesystem::path path_;
};

TEST(LoadTokenizer, SentencePieceDirectoryWithConfigs) {
  TempDir dir("dlm_spm_model_dir");
  std::filesystem::copy_file(kData / "spm_bpe.model", dir.path() / "tokenizer.model");
  dir.write("tokenizer_config.json", R"({"mask_token": {"content": "<mask>", "__type": "AddedToken"},
                                          "eos_token": "</s>", "pad_token": null})");
  dir.write("config.json", R"({"eos_token_id": [5, 2], "mask_token_id": 7})");
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir.path());
  const SpecialTokens& special = tokenizer->special_tokens();
  EXPECT_EQ(special.bos, 1);   // the model's own
  EXPECT_EQ(special.pad, 3);   // null in tokenizer_config.json leaves it
  EXPECT_EQ(special.eos, 2);   // config.json's 5 is overridden by tokenizer_config.json's "</s>"
  EXPECT_EQ(special.mask, 4);  // "<mask>" overrides config.json's 7
  EXPECT_EQ(tokenizer->encode("Hello, world!", SpecialText::Parse),
            fixture().encode("Hello, world!", SpecialText::Parse));

  dir.write("tokenizer_config.json", R"({"mask_token": "<no such token>"})");
  try {
    load_tokenizer(dir.path());
    ADD_FAILURE() << "an unknown mask token was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<no such token>"), std::string::npos) << e.what();
  }
  dir.write("tokenizer_config.json", "{}");
  dir.write("config.json", R"({"eos_token_id": 100000})");
  EXPECT_THROW(load_tokenizer(dir.path()), InputError);
  dir.write("config.json", R"({"eos_token_id": "2"})");
  EXPECT_THROW(load_tokenizer(dir.path()), InputError);
}

TEST(LoadTokenizer, UnsupportedTokenizerJsonFallsBackToTheModel) {
  TempDir dir("dlm_spm_fallback_dir");
  std::filesystem::copy_file(kData / "spm_bpe.model", dir.path() / "tokenizer.model");
  dir.write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}, "pre_tokenizer": null,
                                   "decoder": null, "added_tokens": []})");
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir.path());
  EXPECT_EQ(tokenizer->vocab_size(), 600);
  // A malformed (not merely unsupported) tokenizer.json is an error even with a model beside it.
  dir.write("tokenizer.json", R"({"model": )");
  EXPECT_THROW(load_tokenizer(dir.path()), InputError);
}

TEST(LoadTokenizer, EmptyDirectoryIsAnError) {
  TempDir dir("dlm_empty_model_dir");
  try {
    load_tokenizer(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json or tokenizer.model"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dlm
