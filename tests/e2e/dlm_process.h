#pragma once
// Running the dlm binary from an end-to-end test: the command line is shell-quoted, stdout and stderr are
// captured through files in the test's work directory, and the exit code is kept.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace dlm::e2e {

struct DlmRun {
  int exit_code = -1;
  std::string out, err;

  // stdout as JSON Lines records; with timings dropped (they differ from run to run); their token ids.
  std::vector<nlohmann::json> records() const;
  std::vector<nlohmann::json> untimed_records() const;
  std::vector<std::vector<int>> token_ids() const;
};

inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `program args...` with stdout and stderr going to files in `work_dir`.
inline DlmRun run_program(const std::string& program, const std::vector<std::string>& args,
                          const std::filesystem::path& work_dir) {
  std::string command = shell_quote(program);
  for (const std::string& arg : args) command.append(" ").append(shell_quote(arg));
  const std::filesystem::path out = work_dir / "stdout", err = work_dir / "stderr";
  command += fmt::format(" >{} 2>{}", shell_quote(out.string()), shell_quote(err.string()));
  const int status = std::system(command.c_str());
  DlmRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = read_file(out);
  run.err = read_file(err);
  return run;
}

// The records of JSON Lines text; a line that is not JSON fails the calling test.
inline std::vector<nlohmann::json> parse_jsonl(const std::string& text) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(record.is_discarded()) << "not JSON: " << line;
    records.push_back(record);
  }
  return records;
}

// The records without their timings, which differ from run to run.
inline std::vector<nlohmann::json> untimed(std::vector<nlohmann::json> records) {
  for (nlohmann::json& record : records) {
    record.erase("seconds");
    record.erase("timings");
  }
  return records;
}

inline std::vector<nlohmann::json> DlmRun::records() const {
  return parse_jsonl(out);
}
inline std::vector<nlohmann::json> DlmRun::untimed_records() const {
  return untimed(records());
}
inline std::vector<std::vector<int>> DlmRun::token_ids() const {
  std::vector<std::vector<int>> ids;
  for (const nlohmann::json& record : records())
    ids.push_back(record.at("token_ids").get<std::vector<int>>());
  return ids;
}

// An empty directory for the running test case: ROOT/<test name>.
inline std::filesystem::path fresh_work_dir(const std::filesystem::path& root) {
  const std::filesystem::path dir = root / ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace dlm::e2e
