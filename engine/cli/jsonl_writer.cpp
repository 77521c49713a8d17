#include "engine/cli/jsonl_writer.h"

#include <cerrno>
#include <cstring>

#include "engine/core/error.h"

namespace dlm::cli {

JsonlWriter::JsonlWriter(const std::string& path, Mode mode)
    : name_(path.empty() ? "standard output" : path) {
  if (path.empty()) {
    file_ = stdout;
    return;
  }
  file_ = std::fopen(path.c_str(), mode == Mode::Append ? "ab" : "wb");
  if (file_ == nullptr) fail_input("{}: cannot open for writing: {}", path, std::strerror(errno));
  owned_ = true;
}

JsonlWriter::~JsonlWriter() {
  if (owned_) std::fclose(file_);
}

void JsonlWriter::write(const nlohmann::ordered_json& record) {
  // Every string the records hold is valid UTF-8 already; replacement only guards against a bug.
  const std::string line =
      record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    fail("{}: write failed: {}", name_, std::strerror(errno));
  }
}

}  // namespace dlm::cli
