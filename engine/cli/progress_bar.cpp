#include "engine/cli/progress_bar.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace dlm::cli {

namespace {

std::string clock_text(double seconds) {
  const auto total = static_cast<int64_t>(std::lround(seconds));
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

}  // namespace

int terminal_columns(std::FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

std::string progress_line(size_t done, size_t total, int64_t tokens, double seconds, int width) {
  const double rate = seconds > 0.0 ? static_cast<double>(tokens) / seconds : 0.0;
  std::string stats = fmt::format(" {}/{}  {:.1f} tok/s", done, total, rate);
  if (done > 0 && done < total) {
    stats += "  ETA " + clock_text(seconds / static_cast<double>(done) * static_cast<double>(total - done));
  } else {
    stats += "  " + clock_text(seconds);
  }
  const int bar = std::clamp(width - static_cast<int>(stats.size()) - 2, 0, 40);
  if (bar < 5) return stats.substr(0, static_cast<size_t>(std::max(width, 0)));
  const auto filled = total == 0 ? bar : static_cast<int>(static_cast<int64_t>(bar) * done / total);
  return "[" + std::string(filled, '#') + std::string(bar - filled, '-') + "]" + stats;
}

ProgressBar::ProgressBar(std::FILE* out, size_t total, bool enabled)
    : out_(out), shown_(enabled && isatty(fileno(out)) != 0), total_(total) {
  if (shown_) draw();
}

ProgressBar::~ProgressBar() {
  if (shown_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
  }
}

void ProgressBar::add(size_t items, int64_t tokens) {
  done_ += items;
  tokens_ += tokens;
  if (shown_) draw();
}

void ProgressBar::draw() {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = progress_line(done_, total_, tokens_, seconds, terminal_columns(out_) - 1);
  std::fprintf(out_, "\r\033[K%s", line.c_str());
  std::fflush(out_);
}

}  // namespace dlm::cli
