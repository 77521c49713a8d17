#pragma once
// One interface over SentencePiece and Hugging Face byte-level BPE tokenizers.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlm {

// Whether special-token strings written in the text (e.g. "<|endoftext|>") are matched as special tokens.
enum class SpecialText : uint8_t { Parse, AsPlainText };

struct SpecialTokens {
  std::optional<int32_t> bos, eos, pad, unk, mask;
};

// Tokenizers do not change after loading, so every method may be called from several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text to ids; no BOS is added here.
  virtual std::vector<int32_t> encode(std::string_view text, SpecialText special) const = 0;
  // Ids to text, special tokens included; always valid UTF-8 (broken byte sequences become U+FFFD). Throws
  // InputError on an id outside the vocabulary.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  // Whether `id` names a token: in [0, vocab_size()), and not a gap a tokenizer.json leaves in its ids.
  virtual bool has_id(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;
  virtual const SpecialTokens& special_tokens() const = 0;
  virtual std::string_view kind() const = 0;  // for people: "SentencePiece", "byte-level BPE"
};

// Loads the tokenizer of a Hugging Face model directory: tokenizer.json (byte-level BPE) when present, else
// tokenizer.model (SentencePiece), which is also used when both exist and tokenizer.json's model is of a
// kind not supported here. Special tokens start from the tokenizer's own (SentencePiece's bos/eos/pad/unk);
// then config.json's *_token_id (the first of a list), special_tokens_map.json's and tokenizer_config.json's
// *_token strings override them, in that order. Throws InputError naming the file at fault.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);

}  // namespace dlm
