// dlm_linear_bench: CudaBackend::linear on the bf16 product shapes of LLaDA-8B and Qwen2.5-7B decoding, each
// through dlm's few-row kernel (CudaLinear::Auto) and through cuBLASLt alone, as one table: microseconds a
// call and the weights' streaming rate. Products of few rows read their weights once, so the rate against
// the device's copy bandwidth is what to read.
//
//   dlm_linear_bench [REPEATS]        (REPEATS: timed calls per shape and implementation, default 50)
//
// Each call takes the next of several copies of W, together past 512 MB, so that the weights come from
// device memory as in a forward (the H200's L2 holds 50 MB); the time is the wall time of REPEATS queued
// calls between two synchronizations, after 5 untimed ones.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/core/buffer.h"

namespace {

using namespace dlm;

struct ProductShape {
  const char* name;
  int64_t m, n, k;
};

const ProductShape kShapes[] = {
    {"LLaDA block q/k/v", 32, 12288, 4096},   {"LLaDA block out", 32, 4096, 4096},
    {"LLaDA block gate/up", 32, 24576, 4096}, {"LLaDA block down", 32, 4096, 12288},
    {"Qwen b1 q/k/v", 1, 4608, 3584},         {"Qwen b1 out", 1, 3584, 3584},
    {"Qwen b1 gate/up", 1, 37888, 3584},      {"Qwen b1 down", 1, 3584, 18944},
    {"Qwen b1 LM head", 1, 152064, 3584},     {"Qwen b32 q/k/v", 32, 4608, 3584},
    {"Qwen b32 out", 32, 3584, 3584},         {"Qwen b32 gate/up", 32, 37888, 3584},
    {"Qwen b32 down", 32, 3584, 18944},       {"Qwen b32 LM head", 32, 152064, 3584},
};

constexpr size_t kStreamedBytes = size_t{512} << 20;

// Microseconds a call of `shape` on `backend`.
double time_product(CudaBackend& backend, const ProductShape& shape, int repeats) {
  const size_t w_bytes = static_cast<size_t>(shape.n * shape.k) * 2;
  const size_t copies = std::max<size_t>(2, kStreamedBytes / w_bytes + 1);
  std::vector<Buffer> weights;
  std::vector<Tensor> w;
  for (size_t i = 0; i < copies; ++i) {
    weights.push_back(backend.allocate(w_bytes));
    w.push_back(weights.back().view(DType::BF16, Shape{shape.n, shape.k}));
  }
  const Buffer x_buffer = backend.allocate(static_cast<size_t>(shape.m * shape.k) * 2);
  const Buffer out_buffer = backend.allocate(static_cast<size_t>(shape.m * shape.n) * 2);
  const Tensor x = x_buffer.view(DType::BF16, Shape{shape.m, shape.k});
  const Tensor out = out_buffer.view(DType::BF16, Shape{shape.m, shape.n});
  for (int i = 0; i < 5; ++i) backend.linear(x, w[static_cast<size_t>(i) % copies], std::nullopt, out);
  backend.synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) backend.linear(x, w[static_cast<size_t>(i) % copies], std::nullopt, out);
  backend.synchronize();
  const std::chrono::duration<double, std::micro> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / repeats;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 50;
  if (repeats <= 0) {
    std::fprintf(stderr, "dlm_linear_bench: REPEATS must be a positive count, got '%s'\n", argv[1]);
    return 2;
  }
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) {
    std::fprintf(stderr, "dlm_linear_bench: no CUDA device: %s\n", probe.reason.c_str());
    return 2;
  }
  CudaBackend few_rows(0, CudaOptions{});
  CudaOptions cublaslt_only;
  cublaslt_only.linear = CudaLinear::Cublaslt;
  CudaBackend cublaslt(0, cublaslt_only);
  std::printf(
      "| product | M | N | K | few-row kernel us | GB/s | cuBLASLt us | GB/s | kernel / cuBLASLt |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const ProductShape& shape : kShapes) {
    const double gb = static_cast<double>(shape.n * shape.k) * 2 / 1e9;
    const double kernel_us = time_product(few_rows, shape, repeats);
    const double lt_us = time_product(cublaslt, shape, repeats);
    std::printf("| %s | %lld | %lld | %lld | %.1f | %.0f | %.1f | %.0f | %.2f |\n", shape.name,
                static_cast<long long>(shape.m), static_cast<long long>(shape.n),
                static_cast<long long>(shape.k), kernel_us, gb / (kernel_us * 1e-6), lt_us,
                gb / (lt_us * 1e-6), kernel_us / lt_us);
  }
  return 0;
}
