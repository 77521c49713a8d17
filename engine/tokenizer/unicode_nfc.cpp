#include "engine/tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/core/utf8.h"

namespace dlm {
namespace {

struct CombiningClassRange {
  char32_t first, last;
  uint8_t combining_class;
};
struct Decomposition {
  char32_t code_point, first, second;  // second is 0 for a one-code-point decomposition
  bool recomposes;                     // the pair composes back (not excluded from composition)
};

#include "engine/tokenizer/unicode_nfc_data.inc"

// Hangul syllables decompose arithmetically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Everything below U+0300 is its own NFC and never combines with what follows.
constexpr char32_t kFirstAffected = 0x300;

uint8_t combining_class(char32_t c) {
  if (c < kFirstAffected) return 0;
  auto it = std::upper_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), c,
                             [](char32_t v, const CombiningClassRange& r) { return v < r.first; });
  if (it == std::begin(kCombiningClasses)) return 0;
  --it;
  return c <= it->last ? it->combining_class : 0;
}

const Decomposition* find_decomposition(char32_t c) {
  auto it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), c,
                             [](const Decomposition& d, char32_t v) { return d.code_point < v; });
  return it != std::end(kDecompositions) && it->code_point == c ? it : nullptr;
}

void decompose(char32_t c, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = c < kFirstAffected ? nullptr : find_decomposition(c);
  if (d == nullptr) {
    out.push_back(c);
    return;
  }
  decompose(d->first, out);
  if (d->second != 0) decompose(d->second, out);
}

uint64_t pair_key(char32_t a, char32_t b) {
  return static_cast<uint64_t>(a) << 32 | b;
}

const std::unordered_map<uint64_t, char32_t>& compositions() {
  static const std::unordered_map<uint64_t, char32_t> table = [] {
    std::unordered_map<uint64_t, char32_t> t;
    for (const Decomposition& d : kDecompositions) {
      if (d.recomposes) t.emplace(pair_key(d.first, d.second), d.code_point);
    }
    return t;
  }();
  return table;
}

// The primary composite of a starter and the next code point, or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto& table = compositions();
  auto it = table.find(pair_key(a, b));
  return it == table.end() ? 0 : it->second;
}

// NFC of a run of well-formed UTF-8.
void normalize_run(std::string_view run, std::string& out) {
  std::vector<char32_t> cps;
  cps.reserve(run.size());
  for (size_t pos = 0; pos < run.size();) {
    size_t n = utf8_sequence_length(run, pos);
    decompose(decode_utf8_at(run, pos, n), cps);
    pos += n;
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition (UAX #15): a code point joins the last starter unless a code point of the same or
  // higher class stands between them.
  if (!cps.empty()) {
    size_t starter = 0, kept = 1;
    int last_class = combining_class(cps[0]) == 0 ? 0 : 256;
    for (size_t i = 1; i < cps.size(); ++i) {
      char32_t c = cps[i];
      int c_class = combining_class(c);
      char32_t composite = compose(cps[starter], c);
      if (composite != 0 && (last_class < c_class || last_class == 0)) {
        cps[starter] = composite;
        continue;
      }
      if (c_class == 0) starter = kept;
      last_class = c_class;
      cps[kept++] = c;
    }
    cps.resize(kept);
  }
  for (char32_t c : cps) append_utf8(out, c);
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  // A code point below U+0300 starts a new stretch: it neither composes with what precedes it nor changes
  // itself. Stretches made only of such code points are copied; the others are normalized.
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  bool affected = false;
  auto flush = [&](size_t end) {
    std::string_view stretch = text.substr(start, end - start);
    if (affected) {
      normalize_run(stretch, out);
    } else {
      out.append(stretch);
    }
    start = end;
    affected = false;
  };
  for (size_t pos = 0; pos < text.size();) {
    size_t n = utf8_sequence_length(text, pos);
    if (n == 0) {
      flush(pos);
      out.push_back(text[pos]);
      start = ++pos;
      continue;
    }
    if (decode_utf8_at(text, pos, n) < kFirstAffected) {
      flush(pos);
    } else {
      affected = true;
    }
    pos += n;
  }
  flush(text.size());
  return out;
}

}  // namespace dlm
