// What dlm generate draws on a terminal: the progress line and the --visual canvas text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/cli/canvas_view.h"
#include "engine/cli/progress_bar.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"

namespace dlm::cli {
namespace {

using ::testing::HasSubstr;

TEST(ProgressLine, CountsRateAndTimeLeft) {
  // 10 of 40 done in 20 s at 5 tokens/s: 30 left at 2 s each is one minute. The 27 columns of figures and
  // the brackets leave a bar of 31, a quarter of it (7) filled.
  EXPECT_EQ(progress_line(10, 40, 100, 20.0, 60),
            "[" + std::string(7, '#') + std::string(24, '-') + "] 10/40  5.0 tok/s  ETA 1:00");
}

TEST(ProgressLine, FinishedShowsTheElapsedTime) {
  EXPECT_EQ(progress_line(3, 3, 90, 3725.0, 60), "[" + std::string(34, '#') + "] 3/3  0.0 tok/s  1:02:05");
}

TEST(ProgressLine, NeverWiderThanTheTerminal) {
  for (int width : {0, 5, 12, 30, 200}) {
    const std::string line = progress_line(123, 4567, 89012, 34.5, width);
    EXPECT_LE(static_cast<int>(line.size()), std::max(width, 0)) << width << ": " << line;
  }
  EXPECT_THAT(progress_line(123, 4567, 89012, 34.5, 12), HasSubstr("123/4567")) << "the count survives";
}

TEST(ProgressLine, NothingDoneYet) {
  EXPECT_EQ(progress_line(0, 8, 0, 0.0, 40), "[" + std::string(17, '-') + "] 0/8  0.0 tok/s  0:00");
}

TEST(CanvasText, MasksUnknownIdsAndLineBreaks) {
  const SentencePieceTokenizer tokenizer(std::filesystem::path(DLM_TEST_DATA_DIR) /
                                         "tokenizer/spm_bpe.model");
  const std::vector<int32_t> hello = tokenizer.encode("hello world", SpecialText::AsPlainText);
  const std::vector<int32_t> line_break = tokenizer.encode("a\nb", SpecialText::AsPlainText);
  const int32_t mask = 0;
  std::vector<int32_t> canvas = {mask};
  canvas.insert(canvas.end(), hello.begin(), hello.end());
  canvas.push_back(tokenizer.vocab_size());  // past the tokenizer
  canvas.push_back(mask);
  EXPECT_EQ(canvas_text(tokenizer, mask, canvas), "\u2591" + tokenizer.decode(hello) + "\uFFFD\u2591");
  const std::string text = canvas_text(tokenizer, mask, line_break);
  EXPECT_EQ(text.find('\n'), std::string::npos) << "one canvas, one line";
  EXPECT_THAT(text, HasSubstr("\u23CE"));
}

}  // namespace
}  // namespace dlm::cli
