#include "engine/cli/device_flags.h"

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/error.h"
#ifdef DLM_HAVE_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace dlm::cli {

void add_device_flags(CLI::App& command, DeviceFlags& flags) {
  command.add_option("--device", flags.device, "where to compute: cpu, or cuda (the first GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  command
      .add_option("--precision", flags.precision,
                  "activations: auto (bf16 on a GPU for a bf16 checkpoint, else f32) or f32 (the CPU's "
                  "numbers on any device)")
      ->check(CLI::IsMember({"auto", "f32"}))
      ->capture_default_str();
  command.add_option("--threads", flags.threads, "CPU threads; 0: one per core")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command
      .add_option("--cuda-attention", flags.cuda_attention,
                  "attention on the GPU: auto (cuDNN's fused attention where it applies, but for one-query "
                  "decoding steps; dlm's kernels elsewhere), cudnn (an error where cuDNN does not apply) or "
                  "kernel (dlm's kernels only)")
      ->check(CLI::IsMember({"auto", "cudnn", "kernel"}))
      ->capture_default_str();
  command
      .add_option("--cuda-graphs", flags.cuda_graphs,
                  "on the GPU: auto (record a forward that repeats the previous one's shapes, a "
                  "steady-state denoising step, as a CUDA graph and replay it) or off (queue every op)")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  command.add_flag(
      "--cuda-tune-gemm", flags.cuda_tune_gemm,
      "on the GPU, time up to 1,024 cuBLASLt configurations for each matrix-product shape on its first "
      "use (the heuristic's offers, each with K split 2 to 32 ways, and its algorithms' tiles and "
      "stages) and keep the fastest (a shape's first call then takes longer, and results may differ "
      "in the last bits between runs)");
  command
      .add_option("--cuda-split-attention", flags.cuda_split_attention,
                  "dlm's attention kernels on the GPU: auto (several blocks share one query block's keys "
                  "when a call is too small to fill the device: decoding against a long cache) or off")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  command.add_flag("--cuda-batch-invariant", flags.cuda_batch_invariant,
                   "on the GPU, decode each request to the same bits whatever else is in its batch (products "
                   "without split K, attention and sampling without splits across blocks; slower, see "
                   "BENCHMARKS.md); without it, bf16 near ties may fall another way in another batch");
}

std::unique_ptr<Backend> make_backend(const DeviceFlags& flags) {
  if (flags.device == "cpu") {
    if (flags.cuda_graphs != "auto") fail_input("--cuda-graphs applies to --device cuda only");
    if (flags.cuda_tune_gemm) fail_input("--cuda-tune-gemm applies to --device cuda only");
    if (flags.cuda_split_attention != "auto")
      fail_input("--cuda-split-attention applies to --device cuda only");
    if (flags.cuda_attention != "auto") fail_input("--cuda-attention applies to --device cuda only");
    if (flags.cuda_batch_invariant) fail_input("--cuda-batch-invariant applies to --device cuda only");
    return std::make_unique<CpuBackend>(flags.threads);
  }
  if (flags.cuda_batch_invariant && flags.cuda_tune_gemm)
    fail_input("--cuda-batch-invariant cannot be combined with --cuda-tune-gemm, whose candidates split K");
#ifdef DLM_HAVE_CUDA
  try {
    const CudaAttention attention = flags.cuda_attention == "cudnn"    ? CudaAttention::Cudnn
                                    : flags.cuda_attention == "kernel" ? CudaAttention::Kernel
                                                                       : CudaAttention::Auto;
    return std::make_unique<CudaBackend>(
        0, CudaOptions{attention, flags.cuda_graphs == "auto", flags.cuda_tune_gemm,
                       flags.cuda_split_attention == "auto", flags.cuda_batch_invariant});
  } catch (const Error& error) {
    fail_input("--device cuda: no usable GPU: {}", error.what());
  }
#else
  fail_input("--device cuda: this dlm was built without the CUDA backend (no nvcc at configure time)");
#endif
}

EngineOptions engine_options(const std::string& overlay_path, const DeviceFlags& flags) {
  return EngineOptions{flags.threads, overlay_path,
                       flags.precision == "f32" ? ActivationPrecision::F32 : ActivationPrecision::Auto};
}

std::unique_ptr<Engine> open_engine(const std::string& model_dir, const std::string& overlay_path,
                                    const DeviceFlags& flags) {
  return std::make_unique<Engine>(make_backend(flags), model_dir, engine_options(overlay_path, flags));
}

}  // namespace dlm::cli
