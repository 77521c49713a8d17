#pragma once
// SentencePiece models (tokenizer.model) through libsentencepiece.
#include <filesystem>
#include <memory>

#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace dlm {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Throws InputError naming the file when it cannot be read or is not a SentencePiece model.
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;

  // With SpecialText::Parse, control and unknown pieces written in the text ("<s>", "</s>", "<unk>", ...)
  // become their ids and the text between them is encoded piece by piece, each with SentencePiece's own
  // whitespace handling. User-defined symbols are always matched, as SentencePiece does.
  std::vector<int32_t> encode(std::string_view text, SpecialText special) const override;
  // Control tokens are written as their pieces; the text between them is decoded by SentencePiece (byte
  // pieces are reassembled and broken UTF-8 becomes U+FFFD).
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override;
  bool has_id(int32_t id) const override { return id >= 0 && id < vocab_size(); }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  const SpecialTokens& special_tokens() const override { return special_tokens_; }
  std::string_view kind() const override { return "SentencePiece"; }
  void set_special_tokens(const SpecialTokens& special) { special_tokens_ = special; }

 private:
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;
  void check_id(int32_t id) const;

  std::string source_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  AddedTokenMatcher control_pieces_;
  SpecialTokens special_tokens_;
};

}  // namespace dlm
