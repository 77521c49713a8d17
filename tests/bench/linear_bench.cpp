// dlm_linear_bench: CudaBackend::linear (cuBLASLt) on the bf16 product shapes of LLaDA-8B's full-recompute
// and dual-cache block steps at batch 1 and of Qwen2.5-7B's decoding at batch 1 and 32, one table:
// microseconds a call, the rate at which it streams the weights and its TFLOP/s. Products of few rows read
// their weights once and do little else, so for them the streaming rate against the device's copy bandwidth
// is the gap to read; for the 384-row products of a full step, the TFLOP/s against the matrix rate.
//
//   dlm_linear_bench [REPEATS] [--tune]   (REPEATS: timed calls per shape, default 50)
//
// --tune adds a second table: each shape on a backend with CudaOptions::tune_gemm next to the heuristic's
// choice, with the configuration the tuning chose and its own timings (single runs, L2 flushed).
//
// Each call takes the next of several copies of W (random values), together past 512 MB, so that the weights
// come from device memory as in a forward (an H100's or H200's L2 holds 50 MB); the time is the wall time of
// REPEATS queued calls between two synchronizations, after 5 untimed ones.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string_view>
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
    {"LLaDA full q/k/v", 384, 12288, 4096},   {"LLaDA full out", 384, 4096, 4096},
    {"LLaDA full gate/up", 384, 24576, 4096}, {"LLaDA full down", 384, 4096, 12288},
    {"LLaDA block q/k/v", 32, 12288, 4096},   {"LLaDA block out", 32, 4096, 4096},
    {"LLaDA block gate/up", 32, 24576, 4096}, {"LLaDA block down", 32, 4096, 12288},
    {"Qwen b1 q/k/v", 1, 4608, 3584},         {"Qwen b1 out", 1, 3584, 3584},
    {"Qwen b1 gate/up", 1, 37888, 3584},      {"Qwen b1 down", 1, 3584, 18944},
    {"Qwen b1 LM head", 1, 152064, 3584},     {"Qwen b32 q/k/v", 32, 4608, 3584},
    {"Qwen b32 out", 32, 3584, 3584},         {"Qwen b32 gate/up", 32, 37888, 3584},
    {"Qwen b32 down", 32, 3584, 18944},       {"Qwen b32 LM head", 32, 152064, 3584},
};

constexpr size_t kStreamedBytes = size_t{512} << 20;

size_t weight_bytes(const ProductShape& shape) {
  return static_cast<size_t>(shape.n * shape.k) * 2;  // bf16
}

// A host tensor of bf16 values in +-[0.5, 1): random, never zero (zeros may run faster than real data).
HostTensor random_bf16(int64_t rows, int64_t cols, uint32_t seed) {
  HostTensor t(DType::BF16, Shape{rows, cols});
  std::mt19937 random(seed);
  auto* bits = static_cast<uint16_t*>(t.tensor().data());
  for (int64_t i = 0; i < rows * cols; ++i) bits[i] = static_cast<uint16_t>(0x3F00 | (random() & 0x807F));
  return t;
}

// Microseconds a call of `shape` on `backend`.
double time_product(CudaBackend& backend, const ProductShape& shape, int repeats) {
  const size_t w_bytes = weight_bytes(shape);
  const size_t copies = std::max<size_t>(2, kStreamedBytes / w_bytes + 1);
  const HostTensor w_values = random_bf16(shape.n, shape.k, 7);
  std::vector<Buffer> weights;
  std::vector<Tensor> w;
  for (size_t i = 0; i < copies; ++i) {
    weights.push_back(backend.allocate(w_bytes));
    w.push_back(weights.back().view(DType::BF16, Shape{shape.n, shape.k}));
    backend.copy(w_values.tensor(), w.back());
  }
  const Buffer x_buffer = backend.allocate(static_cast<size_t>(shape.m * shape.k) * 2);
  const Buffer out_buffer = backend.allocate(static_cast<size_t>(shape.m * shape.n) * 2);
  const Tensor x = x_buffer.view(DType::BF16, Shape{shape.m, shape.k});
  const Tensor out = out_buffer.view(DType::BF16, Shape{shape.m, shape.n});
  backend.copy(random_bf16(shape.m, shape.k, 8).tensor(), x);
  for (int i = 0; i < 5; ++i) backend.linear(x, w[static_cast<size_t>(i) % copies], std::nullopt, out);
  backend.synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) backend.linear(x, w[static_cast<size_t>(i) % copies], std::nullopt, out);
  backend.synchronize();
  const std::chrono::duration<double, std::micro> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / repeats;
}

// The table of `backend`'s products: us a call, W's streaming rate, TFLOP/s.
void print_products(CudaBackend& backend, int repeats) {
  std::printf("| product | M | N | K | us | weights GB/s | TFLOP/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const ProductShape& shape : kShapes) {
    const double gb = static_cast<double>(weight_bytes(shape)) / 1e9;
    const double tflop = 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.n * shape.k) / 1e12;
    const double us = time_product(backend, shape, repeats);
    std::printf("| %s | %lld | %lld | %lld | %.1f | %.0f | %.0f |\n", shape.name,
                static_cast<long long>(shape.m), static_cast<long long>(shape.n),
                static_cast<long long>(shape.k), us, gb / (us * 1e-6), tflop / (us * 1e-6));
  }
}

// Each shape timed on `plain` and on `tuned` (CudaOptions::tune_gemm), with what the tuning chose.
void print_tuning(CudaBackend& plain, CudaBackend& tuned, int repeats) {
  std::printf(
      "\n| product | heuristic us | tuned us | tuning: first offer us, chosen us (one run, L2 flushed) "
      "| candidates timed | chosen |\n");
  std::printf("|---|---:|---:|---|---:|---|\n");
  for (const ProductShape& shape : kShapes) {
    const double plain_us = time_product(plain, shape, repeats);
    const double tuned_us = time_product(tuned, shape, repeats);
    const CudaBackend::TunedProduct& choice = tuned.tuned_products().back();
    std::printf("| %s | %.1f | %.1f | %.1f, %.1f | %d | %s |\n", shape.name, plain_us, tuned_us,
                choice.first_offer_us, choice.chosen_us, choice.timed, choice.choice.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 50;
  bool tune = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--tune") {
      tune = true;
    } else {
      repeats = std::atoi(argv[i]);
      if (repeats <= 0) {
        std::fprintf(stderr, "dlm_linear_bench: REPEATS must be a positive count, got '%s'\n", argv[i]);
        return 2;
      }
    }
  }
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) {
    std::fprintf(stderr, "dlm_linear_bench: no CUDA device: %s\n", probe.reason.c_str());
    return 2;
  }
  CudaBackend backend(0);
  print_products(backend, repeats);
  if (tune) {
    CudaBackend tuned(0, CudaOptions{.tune_gemm = true});
    print_tuning(backend, tuned, repeats);
  }
  return 0;
}
