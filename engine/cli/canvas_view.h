#pragma once
// --visual: each request's generated positions drawn as text after every decoding step, masked positions as
// '░'. On a terminal the active requests are redrawn in place; elsewhere (a file, a pipe) every step is one
// line, "[id] step N: text", so the record of a run can be read afterwards.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace dlm::cli {

// One line of text for a canvas: masked positions as '░', ids the tokenizer lacks as U+FFFD, and line
// breaks as '⏎' so that a canvas stays on one line.
std::string canvas_text(const Tokenizer& tokenizer, int32_t mask_id, std::span<const int32_t> generated);

class CanvasView {
 public:
  CanvasView(const Tokenizer& tokenizer, int32_t mask_id, std::FILE* out);

  // Request `label` took a step; its canvas is now `generated`.
  void update(const std::string& label, std::span<const int32_t> generated);
  // Request `label` finished: its last canvas stays on screen above the active ones.
  void retire(const std::string& label);

 private:
  struct Row {
    std::string label, text;
    int64_t steps = 0;
  };
  Row& row(const std::string& label);
  void redraw();

  const Tokenizer& tokenizer_;
  int32_t mask_id_;
  std::FILE* out_;
  bool terminal_;
  std::vector<Row> rows_;  // the active requests, in the order they first stepped
  int64_t drawn_lines_ = 0;
};

}  // namespace dlm::cli
