#include "engine/tokenizer/bpe_model.h"

#include <queue>

namespace dlm {

BpeModel::BpeModel(const std::vector<std::optional<std::string>>& token_bytes, BpeOptions options)
    : options_(options) {
  ids_.reserve(token_bytes.size());
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (token_bytes[id]) ids_.emplace(*token_bytes[id], static_cast<int32_t>(id));
  }
}

BpeModel BpeModel::from_merges(const std::vector<std::optional<std::string>>& token_bytes,
                               const std::array<int32_t, 256>& initial, const std::vector<BpeMerge>& merges,
                               BpeOptions options) {
  BpeModel model(token_bytes, options);
  model.initial_ = initial;
  model.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& m = merges[rank];
    model.merges_.insert_or_assign(pair_key(m.left, m.right), Merge{static_cast<int32_t>(rank), m.merged});
  }
  return model;
}

BpeModel BpeModel::from_ranks(const std::vector<std::optional<std::string>>& token_bytes,
                              BpeOptions options) {
  BpeModel model(token_bytes, options);
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    auto it = model.ids_.find(std::string_view(&byte, 1));
    model.initial_[b] = it == model.ids_.end() ? -1 : it->second;
  }
  // Every split of a token into two tokens is a merge ranked by the whole token.
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (!token_bytes[id]) continue;
    std::string_view token = *token_bytes[id];
    for (size_t k = 1; k < token.size(); ++k) {
      auto left = model.ids_.find(token.substr(0, k));
      if (left == model.ids_.end()) continue;
      auto right = model.ids_.find(token.substr(k));
      if (right == model.ids_.end()) continue;
      int32_t rank = static_cast<int32_t>(id);
      model.merges_.emplace(pair_key(left->second, right->second), Merge{rank, rank});
    }
  }
  return model;
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    auto it = ids_.find(piece);
    if (it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }

  // Symbols form a doubly linked list over their start positions; merged-away symbols get id -1.
  struct Symbol {
    int32_t id, prev, next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  bool previous_unknown = false;
  for (char c : piece) {
    int32_t id = initial_[static_cast<uint8_t>(c)];
    if (id < 0) {
      if (!options_.unk) continue;
      if (previous_unknown && options_.fuse_unk) continue;
      id = *options_.unk;
    }
    previous_unknown = initial_[static_cast<uint8_t>(c)] < 0;
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank, pos, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t pos) {
    int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.merged});
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) consider(pos);

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    // Skip entries made stale by an earlier merge of either symbol.
    auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.merged != top.merged || it->second.rank != top.rank) continue;
    Symbol& right = symbols[left.next];
    left.id = top.merged;
    left.next = right.next;
    right.id = -1;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t pos = 0; pos >= 0; pos = symbols[pos].next) out.push_back(symbols[pos].id);
}

}  // namespace dlm
