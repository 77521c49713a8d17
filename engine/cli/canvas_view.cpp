#include "engine/cli/canvas_view.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "engine/cli/progress_bar.h"

namespace dlm::cli {

namespace {

constexpr std::string_view kMasked = "\u2591";  // ░
constexpr std::string_view kUnknown = "\uFFFD";
constexpr std::string_view kNewline = "\u23CE";  // ⏎

// Terminal rows a line takes, counting one column per code point (UTF-8 lead bytes).
int64_t screen_lines(const std::string& line, int columns) {
  const auto width = std::count_if(line.begin(), line.end(), [](char c) { return (c & 0xC0) != 0x80; });
  return std::max<int64_t>(1, (width + columns - 1) / columns);
}

}  // namespace

std::string canvas_text(const Tokenizer& tokenizer, int32_t mask_id, std::span<const int32_t> generated) {
  std::string text;
  for (size_t i = 0; i < generated.size();) {
    const int32_t id = generated[i];
    if (id == mask_id || !tokenizer.has_id(id)) {
      text += id == mask_id ? kMasked : kUnknown;
      ++i;
      continue;
    }
    // A run of known tokens decodes together, so multi-token characters come out whole.
    size_t end = i;
    while (end < generated.size() && generated[end] != mask_id && tokenizer.has_id(generated[end])) {
      ++end;
    }
    text += tokenizer.decode(std::vector<int32_t>(generated.begin() + i, generated.begin() + end));
    i = end;
  }
  std::string line;
  for (char c : text) {
    if (c == '\n') {
      line += kNewline;
    } else if (c == '\r' || c == '\t') {
      line += ' ';
    } else {
      line += c;
    }
  }
  return line;
}

CanvasView::CanvasView(const Tokenizer& tokenizer, int32_t mask_id, std::FILE* out)
    : tokenizer_(tokenizer), mask_id_(mask_id), out_(out), terminal_(isatty(fileno(out)) != 0) {}

CanvasView::Row& CanvasView::row(const std::string& label) {
  const auto it = std::find_if(rows_.begin(), rows_.end(), [&](const Row& r) { return r.label == label; });
  return it != rows_.end() ? *it : rows_.emplace_back(Row{label, "", 0});
}

void CanvasView::update(const std::string& label, std::span<const int32_t> generated) {
  Row& r = row(label);
  r.text = canvas_text(tokenizer_, mask_id_, generated);
  ++r.steps;
  if (terminal_) {
    redraw();
  } else {
    std::fprintf(out_, "[%s] step %lld: %s\n", r.label.c_str(), static_cast<long long>(r.steps),
                 r.text.c_str());
    std::fflush(out_);
  }
}

void CanvasView::retire(const std::string& label) {
  const auto it = std::find_if(rows_.begin(), rows_.end(), [&](const Row& r) { return r.label == label; });
  if (it == rows_.end()) return;
  if (terminal_) {
    // Printed once more at the top of the block, then left behind as the block moves down.
    const Row finished = *it;
    rows_.erase(it);
    rows_.insert(rows_.begin(), finished);
    redraw();
    drawn_lines_ -=
        screen_lines(fmt::format("[{}] {}", finished.label, finished.text), terminal_columns(out_));
    rows_.erase(rows_.begin());
  } else {
    rows_.erase(it);
  }
}

void CanvasView::redraw() {
  const int columns = terminal_columns(out_);
  if (drawn_lines_ > 0) std::fprintf(out_, "\033[%lldF", static_cast<long long>(drawn_lines_));
  std::fputs("\033[J", out_);
  drawn_lines_ = 0;
  for (const Row& r : rows_) {
    const std::string line = fmt::format("[{}] {}", r.label, r.text);
    std::fprintf(out_, "%s\n", line.c_str());
    drawn_lines_ += screen_lines(line, columns);
  }
  std::fflush(out_);
}

}  // namespace dlm::cli
