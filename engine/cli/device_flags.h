#pragma once
// Where a command computes: --device cpu|cuda, --precision auto|f32, --threads, and the --cuda-* choices
// (attention, graphs, GEMM tuning, split attention, batch invariance), shared by the commands that load a
// model to decode with it.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "engine/runtime/engine.h"

namespace dlm::cli {

struct DeviceFlags {
  std::string device = "cpu";
  std::string precision = "auto";
  int threads = 0;
  std::string cuda_attention = "auto";
  std::string cuda_graphs = "auto";
  bool cuda_tune_gemm = false;
  std::string cuda_split_attention = "auto";
  bool cuda_batch_invariant = false;
};

void add_device_flags(CLI::App& command, DeviceFlags& flags);

// The chosen device's backend; InputError as open_engine.
std::unique_ptr<Backend> make_backend(const DeviceFlags& flags);
// The engine options the flags choose, with the model overlay at `overlay_path` ("" for none).
EngineOptions engine_options(const std::string& overlay_path, const DeviceFlags& flags);

// The engine of `model_dir` on the chosen device. InputError when the device cannot be used: a dlm built
// without the CUDA backend, or no usable GPU (the CUDA error named).
std::unique_ptr<Engine> open_engine(const std::string& model_dir, const std::string& overlay_path,
                                    const DeviceFlags& flags);

}  // namespace dlm::cli
