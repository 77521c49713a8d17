#pragma once
// Byte-level BPE tokenizers (GPT-2, tiktoken, Llama-3, Qwen2): added tokens are cut out of the text first,
// the rest is normalized, pre-tokenized by regex and byte-pair encoded piece by piece.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/error.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace dlm {

// A well-formed tokenizer.json of a kind not supported here (a WordPiece or Unigram model, a normalizer
// other than NFC, ...), as opposed to a malformed one.
class UnsupportedTokenizer : public InputError {
 public:
  using InputError::InputError;
};

enum class TextNormalizer : uint8_t { None, Nfc };

class BpeTokenizer final : public Tokenizer {
 public:
  // token_strings[id]: the vocabulary entry for id, spelled in the byte-level alphabet (nullopt for unused
  // ids); added tokens take their own ids, which may extend the vocabulary.
  BpeTokenizer(std::vector<std::optional<std::string>> token_strings, BpeModel model,
               PreTokenizer pre_tokenizer, std::vector<AddedToken> added_tokens, TextNormalizer normalizer);

  std::vector<int32_t> encode(std::string_view text, SpecialText special) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  // The raw bytes the ids spell, which need not be valid UTF-8. With a vocabulary that covers every byte (all
  // byte-level ones do), no normalizer and no added token that strips spaces, decode_bytes(encode(x)) == x
  // for any bytes x.
  std::string decode_bytes(const std::vector<int32_t>& ids) const;
  int32_t vocab_size() const override { return static_cast<int32_t>(token_strings_.size()); }
  bool has_id(int32_t id) const override { return id >= 0 && id < vocab_size() && token_strings_[id]; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  const SpecialTokens& special_tokens() const override { return special_tokens_; }
  std::string_view kind() const override { return "byte-level BPE"; }
  void set_special_tokens(const SpecialTokens& special) { special_tokens_ = special; }

 private:
  const std::string& token_bytes(int32_t id) const;

  std::vector<std::optional<std::string>> token_strings_;
  std::vector<std::string> token_bytes_;  // what each id decodes to
  StringIdMap token_ids_;
  BpeModel model_;
  PreTokenizer pre_tokenizer_;
  AddedTokenMatcher raw_added_;         // matched in the raw text
  AddedTokenMatcher normalized_added_;  // matched in the normalized text
  TextNormalizer normalizer_;
  SpecialTokens special_tokens_;
};

// A Hugging Face tokenizer.json whose model is byte-level BPE. Throws InputError naming the file and the
// fault.
std::unique_ptr<BpeTokenizer> load_tokenizer_json(const std::filesystem::path& path);
// The same from the file's text; `source` names it in error messages.
std::unique_ptr<BpeTokenizer> parse_tokenizer_json(std::string_view text, const std::string& source);

// A tiktoken rank file ("base64(token) rank" per line) with the encoding's split pattern and special tokens.
std::unique_ptr<BpeTokenizer> load_tiktoken(
    const std::filesystem::path& path, std::string_view pattern,
    const std::vector<std::pair<std::string, int32_t>>& special_tokens);

// GPT-2's original files: encoder.json (token -> id) and vocab.bpe (merges), with the GPT-2 pattern.
std::unique_ptr<BpeTokenizer> load_gpt2_bpe(
    const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe,
    const std::vector<std::pair<std::string, int32_t>>& special_tokens);

}  // namespace dlm
