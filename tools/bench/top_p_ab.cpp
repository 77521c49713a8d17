// Host top-p against its previous implementation (samplers/token_rules.cpp at e756c2c, put in namespace
// dlm_before), in one binary: ms per 152,064-token row of N(0, 3) logits, p = 0.9, alone and after top-k 50.
// BENCHMARKS.md ("Host sampling filters") has the commands that build and run it.
#include <chrono>
#include <cstdio>
#include <random>
#include <span>
#include <vector>

#include "samplers/token_rules.h"

namespace dlm_before {
void filter_top_p(std::span<float> row, double p);
}

int main() {
  std::mt19937 gen(1);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> logits(152064);
  for (float& v : logits) v = logit(gen);
  constexpr int kRows = 10;
  for (int round = 0; round < 2; ++round) {
    for (int top_k : {0, 50}) {
      for (bool before : {true, false}) {
        std::vector<float> row;
        const auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < kRows; ++r) {
          row = logits;
          dlm::filter_top_k(row, top_k);
          if (before) {
            dlm_before::filter_top_p(row, 0.9);
          } else {
            dlm::filter_top_p(row, 0.9);
          }
        }
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        std::printf("%s: top-k %d, then top-p 0.9: %.2f ms a row\n", before ? "before" : "now", top_k,
                    ms / kRows);
      }
    }
  }
}
