#pragma once
// JSON Lines output: one record per line, flushed as soon as it is written, so a killed run keeps every
// finished record.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace dlm::cli {

class JsonlWriter {
 public:
  enum class Mode { Truncate, Append };
  // An empty path writes to standard output; otherwise the file is created, then truncated or appended to.
  // InputError naming the file when it cannot be opened.
  explicit JsonlWriter(const std::string& path, Mode mode = Mode::Truncate);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  void write(const nlohmann::ordered_json& record);  // Error naming the output when the write fails

 private:
  std::string name_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
};

}  // namespace dlm::cli
