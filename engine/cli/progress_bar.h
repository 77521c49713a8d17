#pragma once
// A one-line progress bar for batch runs, drawn on a terminal only, so redirected output and logs never see
// it: items done of the total, generated tokens per second, and the time left at the current pace.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dlm::cli {

// The bar's text, `width` columns at most: "[#####-----] 12/40  85.3 tok/s  ETA 0:31".
std::string progress_line(size_t done, size_t total, int64_t tokens, double seconds, int width);

class ProgressBar {
 public:
  // Draws on `out` only when `enabled` and `out` is a terminal.
  ProgressBar(std::FILE* out, size_t total, bool enabled);
  ~ProgressBar();  // clears the bar
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void add(size_t items, int64_t tokens);

 private:
  void draw();

  std::FILE* out_;
  bool shown_;
  size_t total_, done_ = 0;
  int64_t tokens_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Columns of the terminal on `out`; 80 when it does not say.
int terminal_columns(std::FILE* out);

}  // namespace dlm::cli
