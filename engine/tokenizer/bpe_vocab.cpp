#include "engine/tokenizer/bpe_vocab.h"

#include "engine/core/error.h"
#include "engine/tokenizer/byte_level.h"

namespace dlm {

void BpeVocab::add(const std::string& token, int64_t id) {
  if (id < 0 || id >= kMaxTokenId)
    fail_input("{}: token '{}' has id {}, outside [0, {})", source_, token, id, kMaxTokenId);
  if (static_cast<size_t>(id) >= strings_.size()) strings_.resize(id + 1);
  if (strings_[id]) fail_input("{}: id {} is given to both '{}' and '{}'", source_, id, *strings_[id], token);
  strings_[id] = token;
  ids_.emplace(token, static_cast<int32_t>(id));
}

std::optional<int32_t> BpeVocab::find(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

BpeModel BpeVocab::build(const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
                         bool byte_fallback) const {
  std::vector<BpeMerge> resolved;
  resolved.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    auto left = find(a), right = find(b), merged = find(a + b);
    if (!left || !right) {
      fail_input("{}: merge {} '{} {}' refers to unknown token '{}'", source_, i, a, b, left ? b : a);
    }
    if (!merged)
      fail_input("{}: merge {} '{} {}' makes '{}', which is not in the vocab", source_, i, a, b, a + b);
    resolved.push_back({*left, *right, *merged});
  }
  std::array<int32_t, 256> initial;
  for (int b = 0; b < 256; ++b) {
    std::optional<int32_t> id = find(byte_level_encode(std::string(1, static_cast<char>(b))));
    if (!id && byte_fallback) id = find(fmt::format("<0x{:02X}>", b));
    initial[b] = id.value_or(-1);
  }
  std::vector<std::optional<std::string>> token_bytes(strings_.size());
  for (size_t id = 0; id < strings_.size(); ++id) {
    if (strings_[id]) token_bytes[id] = byte_level_decode(*strings_[id]);
  }
  return BpeModel::from_merges(token_bytes, initial, resolved, options);
}

}  // namespace dlm
