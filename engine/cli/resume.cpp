#include "engine/cli/resume.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/core/error.h"
#include "engine/io/text_file.h"

namespace dlm::cli {

std::set<std::string> recorded_ids(const std::string& path) {
  std::set<std::string> ids;
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return ids;
  const std::string text = read_text_file(path);
  const size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  if (complete < text.size()) {
    std::filesystem::resize_file(path, complete, error);
    if (error) fail_input("{}: cannot cut the unfinished last line: {}", path, error.message());
  }
  int64_t line_number = 0;
  for (size_t begin = 0; begin < complete;) {
    const size_t end = text.find('\n', begin);
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object() || !record.contains("id")) {
      fail_input(
          "{}:{}: not a dlm record (a JSON object with an \"id\"); --resume needs the output of an "
          "earlier run",
          path, line_number);
    }
    ids.insert(record["id"].dump());
  }
  return ids;
}

}  // namespace dlm::cli
