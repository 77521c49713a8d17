#include "engine/cli/prompts_file.h"

#include <string_view>

#include "engine/core/error.h"
#include "engine/core/utf8.h"
#include "engine/io/text_file.h"

namespace dlm::cli {

std::vector<std::string> read_prompts_file(const std::string& path) {
  const std::string text = read_text_file(path);
  std::vector<std::string> prompts;
  size_t begin = 0;
  for (int64_t line_number = 1; begin < text.size(); ++line_number) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\0') != std::string_view::npos) {
      fail_input("{}:{}: contains a NUL byte (not a text file)", path, line_number);
    }
    if (!is_valid_utf8(line)) fail_input("{}:{}: not valid UTF-8", path, line_number);
    if (line.find_first_not_of(" \t\v\f\r") == std::string_view::npos) continue;
    prompts.emplace_back(line);
  }
  return prompts;
}

}  // namespace dlm::cli
