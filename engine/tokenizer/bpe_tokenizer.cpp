#include "engine/tokenizer/bpe_tokenizer.h"

#include <unordered_map>

#include "engine/core/error.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/unicode_nfc.h"
#include "engine/core/utf8.h"

namespace dlm {
namespace {

// Pre-tokens longer than this are rare and not worth remembering.
constexpr size_t kMaxCachedPiece = 256;

std::vector<AddedToken> with_normalized_flag(const std::vector<AddedToken>& tokens, bool normalized) {
  std::vector<AddedToken> out;
  for (const AddedToken& t : tokens) {
    if (t.normalized == normalized) out.push_back(t);
  }
  return out;
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::optional<std::string>> token_strings, BpeModel model,
                           PreTokenizer pre_tokenizer, std::vector<AddedToken> added_tokens,
                           TextNormalizer normalizer)
    : token_strings_(std::move(token_strings)),
      model_(std::move(model)),
      pre_tokenizer_(std::move(pre_tokenizer)),
      normalizer_(normalizer) {
  for (size_t id = 0; id < token_strings_.size(); ++id) {
    if (token_strings_[id]) token_ids_.emplace(*token_strings_[id], static_cast<int32_t>(id));
  }
  for (AddedToken& token : added_tokens) {
    DLM_CHECK(token.id >= 0, "added token '{}' has no id", token.content);
    if (static_cast<size_t>(token.id) >= token_strings_.size()) token_strings_.resize(token.id + 1);
    token_strings_[token.id] = token.content;
    token_ids_.insert_or_assign(token.content, token.id);
    // A normalized token is looked for in the normalized text, so it is spelled the normalized way.
    if (token.normalized && normalizer_ == TextNormalizer::Nfc) token.content = nfc_normalize(token.content);
  }
  // The ByteLevel decoder maps a token's characters back to bytes, or keeps the token's own UTF-8 when one of
  // them is outside the byte alphabet.
  token_bytes_.resize(token_strings_.size());
  for (size_t id = 0; id < token_strings_.size(); ++id) {
    if (!token_strings_[id]) continue;
    std::optional<std::string> bytes = byte_level_decode(*token_strings_[id]);
    token_bytes_[id] = bytes ? std::move(*bytes) : *token_strings_[id];
  }
  raw_added_ = AddedTokenMatcher(with_normalized_flag(added_tokens, false));
  normalized_added_ = AddedTokenMatcher(with_normalized_flag(added_tokens, true));
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, SpecialText special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  // Pre-tokens repeat within a text; the cache lives for one call, so encode needs no locking.
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache;
  auto encode_piece = [&](std::string_view piece) {
    if (piece.size() > kMaxCachedPiece) {
      model_.encode(piece, ids);
      return;
    }
    auto it = cache.find(piece);
    if (it == cache.end()) {
      std::vector<int32_t> piece_ids;
      model_.encode(piece, piece_ids);
      it = cache.emplace(std::string(piece), std::move(piece_ids)).first;
    }
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  };

  std::vector<TextSegment> raw_segments, segments;
  raw_added_.split(text, special, raw_segments);
  for (const TextSegment& raw : raw_segments) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string_view part = text.substr(raw.begin, raw.end - raw.begin);
    std::string normalized;
    if (normalizer_ == TextNormalizer::Nfc) {
      normalized = nfc_normalize(part);
      part = normalized;
    }
    normalized_added_.split(part, special, segments);
    for (const TextSegment& segment : segments) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
      } else {
        pre_tokenizer_.run(part.substr(segment.begin, segment.end - segment.begin), encode_piece);
      }
    }
  }
  return ids;
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  if (!has_id(id)) {
    fail_input("token id {} is not in the vocabulary (size {})", id, vocab_size());
  }
  return token_bytes_[id];
}

std::string BpeTokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  return sanitize_utf8(decode_bytes(ids));
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  auto it = token_ids_.find(token);
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  token_bytes(id);  // validates id
  return *token_strings_[id];
}

}  // namespace dlm
