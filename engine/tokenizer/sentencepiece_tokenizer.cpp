#include "engine/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "engine/core/error.h"
#include "engine/core/utf8.h"

namespace dlm {
namespace {

std::optional<int32_t> defined(int id) {
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file)
    : source_(model_file.string()), processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  auto status = processor_->Load(source_);
  if (!status.ok()) fail_input("{}: not a readable SentencePiece model: {}", source_, status.ToString());
  std::vector<AddedToken> controls;
  for (int id = 0; id < processor_->GetPieceSize(); ++id) {
    if (!processor_->IsControl(id) && !processor_->IsUnknown(id)) continue;
    AddedToken token;
    token.content = processor_->IdToPiece(id);
    token.id = id;
    token.special = true;
    if (!token.content.empty()) controls.push_back(std::move(token));
  }
  control_pieces_ = AddedTokenMatcher(std::move(controls));
  special_tokens_.bos = defined(processor_->bos_id());
  special_tokens_.eos = defined(processor_->eos_id());
  special_tokens_.pad = defined(processor_->pad_id());
  special_tokens_.unk = defined(processor_->unk_id());
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<int> piece_ids;
  auto status = processor_->Encode(text, &piece_ids);
  if (!status.ok())
    fail_input("{}: cannot encode a {}-byte text: {}", source_, text.size(), status.ToString());
  ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, SpecialText special) const {
  std::vector<int32_t> ids;
  if (special == SpecialText::AsPlainText) {
    encode_plain(text, ids);
    return ids;
  }
  std::vector<TextSegment> segments;
  control_pieces_.split(text, special, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      encode_plain(text.substr(segment.begin, segment.end - segment.begin), ids);
    }
  }
  return ids;
}

void SentencePieceTokenizer::check_id(int32_t id) const {
  if (!has_id(id))
    fail_input("token id {} is not in the vocabulary (size {})", id, vocab_size());
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    auto status = processor_->Decode(run, &text);
    if (!status.ok()) fail_input("{}: cannot decode: {}", source_, status.ToString());
    out += text;
    run.clear();
  };
  for (int32_t id : ids) {
    check_id(id);
    if (processor_->IsControl(id)) {
      flush();
      out += processor_->IdToPiece(id);
    } else {
      run.push_back(id);
    }
  }
  flush();
  return sanitize_utf8(out);
}

int32_t SentencePieceTokenizer::vocab_size() const {
  return processor_->GetPieceSize();
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  int id = processor_->PieceToId(token);
  if (id < 0 || processor_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  check_id(id);
  return processor_->IdToPiece(id);
}

}  // namespace dlm
