#pragma once
// The fixture of the end-to-end tests on the tiny model that the e2e_make_tiny_model ctest fixture writes
// (DLM_E2E_MODEL_DIR): a fresh work directory per test, files written into it, and dlm runs from it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/dlm_process.h"

namespace dlm::e2e {

class TinyModelE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_work_dir(DLM_E2E_WORK_DIR);
    ASSERT_TRUE(std::filesystem::exists(std::filesystem::path(DLM_E2E_MODEL_DIR) / "model.safetensors"))
        << "the e2e_make_tiny_model fixture has not run";
  }

  // Writes `contents` to `name` in the work directory; returns its path.
  std::string write(const std::string& name, const std::string& contents) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  // Runs dlm with the arguments, capturing stdout, stderr and the exit code.
  DlmRun dlm(const std::vector<std::string>& args) const { return run_program(DLM_BINARY, args, dir_); }

  // `dlm generate` on the tiny model with a small schedule, plus the extra arguments.
  std::vector<std::string> generate_args(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {
        "generate",       "--model", DLM_E2E_MODEL_DIR, "--gen-length", "16", "--steps", "8",
        "--block-length", "8"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  DlmRun generate(const std::vector<std::string>& extra) const { return dlm(generate_args(extra)); }

  std::filesystem::path dir_;
};

}  // namespace dlm::e2e
