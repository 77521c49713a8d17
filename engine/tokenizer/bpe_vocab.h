#pragma once
// A byte-level BPE vocabulary read from a file (tokenizer.json, encoder.json) and the merge model built on
// it; faults are reported as InputError naming the source.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/bpe_model.h"

namespace dlm {

// Far above any real vocabulary; it keeps a corrupt id from allocating gigabytes.
inline constexpr int64_t kMaxTokenId = 1 << 22;

class BpeVocab {
 public:
  explicit BpeVocab(std::string source) : source_(std::move(source)) {}

  // Adds a token spelled in the byte-level alphabet; an id may be given only once.
  void add(const std::string& token, int64_t id);
  std::optional<int32_t> find(const std::string& token) const;
  size_t size() const { return ids_.size(); }  // the number of tokens (ids may leave gaps)

  // Merges as pairs of tokens, in rank order. byte_fallback: a byte whose character is not a token uses the
  // "<0xHH>" token instead.
  BpeModel build(const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
                 bool byte_fallback) const;

  std::vector<std::optional<std::string>> release_strings() { return std::move(strings_); }

 private:
  std::string source_;
  std::vector<std::optional<std::string>> strings_;
  StringIdMap ids_;
};

}  // namespace dlm
