#pragma once
// Byte-pair encoding over raw bytes: one pre-token's bytes start as one symbol per byte, then the adjacent
// pair of lowest rank is merged (leftmost first on ties) until no pair has a merge.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dlm {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeMerge {
  int32_t left, right, merged;
};

struct BpeOptions {
  // A pre-token that is itself a token is emitted whole (tiktoken; Hugging Face's "ignore_merges").
  bool ignore_merges = false;
  // The symbol for a byte with no single-byte token; runs of them fuse into one when fuse_unk is set.
  // Without it such bytes are dropped, as Hugging Face's BPE does.
  std::optional<int32_t> unk;
  bool fuse_unk = false;
};

class BpeModel {
 public:
  // token_bytes[id]: the bytes token `id` spells (nullopt for ids unused or not spelled in bytes).
  // initial[b]: the symbol for byte b, or -1 when none exists. Merges are listed in rank order; a later
  // duplicate of a pair replaces the earlier one.
  static BpeModel from_merges(const std::vector<std::optional<std::string>>& token_bytes,
                              const std::array<int32_t, 256>& initial, const std::vector<BpeMerge>& merges,
                              BpeOptions options);
  // tiktoken: two adjacent symbols merge when their concatenation is a token, whose id is its rank.
  static BpeModel from_ranks(const std::vector<std::optional<std::string>>& token_bytes, BpeOptions options);

  // Appends the ids of one pre-token.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank, merged;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  BpeModel(const std::vector<std::optional<std::string>>& token_bytes, BpeOptions options);

  BpeOptions options_;
  StringIdMap ids_;  // token bytes -> id
  std::array<int32_t, 256> initial_{};
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace dlm
