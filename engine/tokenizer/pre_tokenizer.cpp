#include "engine/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <cctype>

namespace dlm {

void PreTokenizer::add_split(SplitRegex regex, SplitBehavior behavior, bool invert) {
  steps_.emplace_back(SplitStep{std::move(regex), behavior, invert});
}

void PreTokenizer::add_prefix_space() {
  steps_.emplace_back(PrefixSpaceStep{});
}

void PreTokenizer::run(std::string_view text, const std::function<void(std::string_view)>& emit) const {
  if (!text.empty()) run_from(0, text, emit);
}

void PreTokenizer::run_from(size_t index, std::string_view piece,
                            const std::function<void(std::string_view)>& emit) const {
  if (index == steps_.size()) {
    emit(piece);
    return;
  }
  if (const auto* split_step = std::get_if<SplitStep>(&steps_[index])) {
    split(*split_step, piece, [&](std::string_view sub) { run_from(index + 1, sub, emit); });
  } else if (piece.front() == ' ') {
    run_from(index + 1, piece, emit);
  } else {
    std::string prefixed = " ";
    prefixed.append(piece);
    run_from(index + 1, prefixed, emit);
  }
}

// Follows Hugging Face's NormalizedString::split: the text is cut into alternating matches and gaps, each
// behaviour then decides which pieces are kept and which delimiters are glued to a neighbour.
void PreTokenizer::split(const SplitStep& step, std::string_view piece,
                         const std::function<void(std::string_view)>& emit) {
  struct Part {
    size_t begin, end;
    bool is_match;
  };
  std::vector<std::pair<size_t, size_t>> matches;
  step.regex.find_all(piece, matches);
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (auto [begin, end] : matches) {
    if (prev != begin) parts.push_back({prev, begin, step.invert});
    parts.push_back({begin, end, !step.invert});
    prev = end;
  }
  if (prev != piece.size()) parts.push_back({prev, piece.size(), step.invert});

  struct Kept {
    size_t begin, end;
    bool remove;
  };
  std::vector<Kept> kept;
  kept.reserve(parts.size());
  bool previous_match = false;
  switch (step.behavior) {
    case SplitBehavior::Isolated:
      for (const Part& p : parts) kept.push_back({p.begin, p.end, false});
      break;
    case SplitBehavior::Removed:
      for (const Part& p : parts) kept.push_back({p.begin, p.end, p.is_match});
      break;
    case SplitBehavior::Contiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const Kept& k : kept) {
    if (!k.remove && k.end > k.begin) emit(piece.substr(k.begin, k.end - k.begin));
  }
}

std::string escape_regex(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() * 2);
  for (char c : literal) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace dlm
