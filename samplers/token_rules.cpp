#include "samplers/token_rules.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/error.h"

namespace dlm {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

float row_max(std::span<const float> row) {
  float max = kMinusInf;
  for (float v : row) max = std::max(max, v);
  return max;
}

}  // namespace

void suppress(std::span<float> row, int32_t id) {
  DLM_CHECK(id >= 0 && static_cast<size_t>(id) < row.size(), "suppress: id {} outside a row of {}", id,
            row.size());
  row[static_cast<size_t>(id)] = kMinusInf;
}

void apply_repetition_penalty(std::span<float> row, std::span<const int32_t> history, double penalty) {
  if (penalty == 1.0) return;
  std::vector<int32_t> ids(history.begin(), history.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= row.size()) continue;
    float& l = row[static_cast<size_t>(id)];
    l = l < 0 ? static_cast<float>(l * penalty) : static_cast<float>(l / penalty);
  }
}

void filter_top_k(std::span<float> row, int64_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= row.size()) return;
  if (std::any_of(row.begin(), row.end(), [](float v) { return std::isnan(v); })) return;
  std::vector<float> sorted(row.begin(), row.end());
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  const float kth = sorted[static_cast<size_t>(k - 1)];
  for (float& v : row) {
    if (v < kth) v = kMinusInf;
  }
}

void filter_top_p(std::span<float> row, double p) {
  if (p >= 1.0 || row.empty()) return;
  std::vector<double> probabilities;
  softmax(row, probabilities);
  // A NaN or +inf logit, or a row of -inf, makes every probability NaN: no mass ever exceeds p.
  if (std::isnan(probabilities.front())) return;
  // The order is descending by logit, ties by the lower id; the tokens kept are a prefix of it. Tokens of
  // probability 0 (those top-k cut, say) end it, and the mass before each of them is the whole mass before:
  // they all go or all stay. The others are sorted a prefix at a time (the next `candidates` found in linear
  // time), four times longer each round, until the mass before a token exceeds p.
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  const auto live_end = std::partition(
      order.begin(), order.end(), [&](int32_t id) { return probabilities[static_cast<size_t>(id)] > 0.0; });
  const auto live = static_cast<size_t>(live_end - order.begin());
  const auto before = [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  double mass = 0.0;
  size_t kept = live;
  for (size_t sorted = 0; sorted < live && kept == live;) {
    const size_t candidates = std::min(std::max<size_t>(256, 4 * sorted), live);
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(sorted);
    const auto end = order.begin() + static_cast<std::ptrdiff_t>(candidates);
    if (candidates < live) std::nth_element(first, end, live_end, before);
    std::sort(first, end, before);
    for (size_t i = sorted; i < candidates; ++i) {
      if (i > 0 && mass > p) {
        kept = i;
        break;
      }
      mass += probabilities[static_cast<size_t>(order[i])];
    }
    sorted = candidates;
  }
  if (kept == live && !(mass > p)) kept = order.size();  // nothing exceeded p: the zeros stay too
  for (size_t i = kept; i < order.size(); ++i) row[static_cast<size_t>(order[i])] = kMinusInf;
}

void filter_min_p(std::span<float> row, double min_p) {
  if (min_p <= 0.0) return;
  std::vector<double> probabilities;
  softmax(row, probabilities);
  const double floor = min_p * *std::max_element(probabilities.begin(), probabilities.end());
  for (size_t v = 0; v < row.size(); ++v) {
    if (probabilities[v] < floor) row[v] = kMinusInf;
  }
}

void apply_temperature(std::span<float> row, double temperature) {
  DLM_CHECK(temperature > 0.0, "apply_temperature: temperature {}", temperature);
  for (float& v : row) v = static_cast<float>(v / temperature);
}

void softmax(std::span<const float> row, std::vector<double>& probabilities) {
  probabilities.resize(row.size());
  const double max = row_max(row);
  double sum = 0.0;
  for (size_t v = 0; v < row.size(); ++v) {
    probabilities[v] = std::exp(static_cast<double>(row[v]) - max);
    sum += probabilities[v];
  }
  for (double& p : probabilities) p /= sum;
}

int32_t argmax(std::span<const float> row, int32_t never) {
  int32_t best = -1;
  for (size_t v = 0; v < row.size(); ++v) {
    const auto id = static_cast<int32_t>(v);
    if (id == never) continue;
    if (best < 0 || row[static_cast<size_t>(best)] < row[v]) best = id;
  }
  return best < 0 ? 0 : best;
}

int32_t gumbel_argmax(std::span<const float> row, double temperature, const RngStream& rng, uint64_t step,
                      uint64_t base, int32_t never) {
  const uint64_t counter = draw_step(DrawPurpose::Gumbel, step);
  int32_t best = 0;
  double best_score = -std::numeric_limits<double>::infinity();
  for (size_t v = 0; v < row.size(); ++v) {
    if (static_cast<int32_t>(v) == never) continue;
    const double u = rng.uniform_double_open(counter, base + v);
    const double score = std::exp(static_cast<double>(row[v])) / std::pow(-std::log(u), temperature);
    if (score > best_score) {
      best_score = score;
      best = static_cast<int32_t>(v);
    }
  }
  return best;
}

int32_t sample_categorical(std::span<const double> probabilities, double u, int32_t never) {
  if (never >= 0 && static_cast<size_t>(never) < probabilities.size()) {
    // u spans the mass left without `never`, summed rather than taken as 1 - p[never]: when `never` holds
    // nearly all the mass, that difference would keep only a few significant digits.
    double drawable = 0.0;
    for (size_t v = 0; v < probabilities.size(); ++v) {
      if (static_cast<int32_t>(v) != never && probabilities[v] > 0.0) drawable += probabilities[v];
    }
    u *= drawable;
  }
  double mass = 0.0;
  int32_t last_possible = 0;
  for (size_t v = 0; v < probabilities.size(); ++v) {
    if (static_cast<int32_t>(v) == never || probabilities[v] <= 0.0) continue;
    last_possible = static_cast<int32_t>(v);
    mass += probabilities[v];
    if (u < mass) return last_possible;
  }
  return last_possible;  // u beyond the rounded total mass
}

double confidence(std::span<const double> probabilities, int32_t token, Remasking remasking) {
  switch (remasking) {
    case Remasking::LowConfidence:
      return probabilities[static_cast<size_t>(token)];
    case Remasking::Margin: {
      double first = 0.0, second = 0.0;
      for (double p : probabilities) {
        if (p > first) {
          second = first;
          first = p;
        } else if (p > second) {
          second = p;
        }
      }
      return first - second;
    }
    case Remasking::Entropy: {
      double sum = 0.0;
      for (double p : probabilities) sum += p * std::log(p + 1e-10);
      return sum;
    }
    case Remasking::Random:
    case Remasking::Origin:
      break;
  }
  DLM_CHECK(false, "confidence: remasking {} draws its own", static_cast<int>(remasking));
  return 0.0;
}

double entropy(std::span<const double> probabilities) {
  double sum = 0.0;
  for (double p : probabilities) {
    if (p > 0.0) sum -= p * std::log(p);
  }
  return sum;
}

}  // namespace dlm
