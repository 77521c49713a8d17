// The CUDA backend's ops against the CPU backend (the reference), through the op front-ends: odd shapes,
// every dtype an op accepts, NaN/Inf in the same places, in-place forms, and guard bytes around every device
// tensor. Without a device every test skips with the reason.
//
// Tolerances (in each test's comments) follow from how the two backends compute: where both perform the same
// IEEE f32 operations in the same order the comparison is exact; where they differ only in the order of a
// double-precision sum, or in a double-precision library function rounded once to f32, results agree to an
// ulp or two; where the CPU's f32 expf (glibc, < 1 ulp) meets CUDA's expf (<= 2 ulp), the bound is derived
// from those 3 ulps. A non-finite reference value must be matched exactly (NaN by NaN, an infinity by the
// same infinity), and a finite one by a finite one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/cast.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/norm.h"
#include "engine/ops/rope.h"
#include "engine/ops/softmax.h"
#include "engine/ops/vocab.h"
#include "tests/gpu/tensor_placement.h"

namespace dlm {
namespace {

using gpu_test::for_each_alignment;
using gpu_test::guard_bytes;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();

// ------------------------------------------------------------------------------------------ the backends

std::unique_ptr<CudaBackend>& gpu_slot() {
  static std::unique_ptr<CudaBackend> backend;
  return backend;
}

CudaBackend& gpu() {
  return *gpu_slot();
}

// Four threads whatever the machine, as in the CPU op tests.
CpuBackend& cpu() {
  static CpuBackend backend(4);
  return backend;
}

// Every test of this file derives from GpuTest: it skips, with the probe's reason, when there is no device.
// One CudaBackend per test suite, destroyed before the process exits.
class GpuTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cuda::probe_devices().count > 0 && !gpu_slot()) gpu_slot() = std::make_unique<CudaBackend>(0);
  }
  static void TearDownTestSuite() { gpu_slot().reset(); }
  void SetUp() override {
    const cuda::DeviceProbe probe = cuda::probe_devices();
    if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
    ASSERT_TRUE(gpu_slot()) << "a CUDA device is present but the CudaBackend could not be created";
  }
};

template <class Param>
class GpuParamTest : public GpuTest, public ::testing::WithParamInterface<Param> {};

// ----------------------------------------------------------------------------------- guarded device data

// Guard bands around every device tensor: gpu_test::guard_bytes() (tensor_placement.h), a multiple of 8 bytes
// (i64 ids stay aligned).
constexpr uint8_t kInputGuard = 0xff;   // NaN in every float dtype, -1 as an id: stray reads poison results
constexpr uint8_t kOutputGuard = 0xa5;  // a pattern no kernel writes by accident

// A device tensor between two guard bands of `pattern` bytes; the tensor's own bytes start as the pattern
// too, so an element an op fails to write keeps a value the reference does not have.
struct Guarded {
  Buffer buffer;
  Tensor tensor;
  uint8_t pattern = 0;
  size_t guard = 0;  // bytes before and after the tensor
  operator const Tensor&() const { return tensor; }
};

Guarded guarded(DType dtype, Shape shape, uint8_t pattern) {
  Guarded g;
  const size_t payload = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  g.guard = guard_bytes();
  const size_t total = payload + 2 * g.guard;
  g.buffer = gpu().allocate(total);
  HostTensor fill(DType::U8, Shape{static_cast<int64_t>(total)});
  std::memset(fill.tensor().data(), pattern, total);
  gpu().copy(fill, g.buffer.view(DType::U8, Shape{static_cast<int64_t>(total)}));
  g.tensor = g.buffer.view(dtype, shape, g.guard);
  g.pattern = pattern;
  return g;
}

Guarded output(DType dtype, Shape shape) {
  return guarded(dtype, shape, kOutputGuard);
}

Guarded upload(const HostTensor& host) {
  Guarded g = guarded(host.tensor().dtype(), host.tensor().shape(), kInputGuard);
  gpu().copy(host, g.tensor);
  return g;
}

HostTensor download(const Tensor& t) {
  HostTensor host(t.dtype(), t.shape());
  gpu().copy(t, host);
  return host;
}

// The bytes before and after the tensor are still the guard pattern.
void expect_guards_intact(const Guarded& g) {
  const int64_t total = static_cast<int64_t>(g.buffer.bytes());
  HostTensor bytes = download(g.buffer.view(DType::U8, Shape{total}));
  const auto* b = static_cast<const uint8_t*>(bytes.tensor().data());
  const int64_t payload = static_cast<int64_t>(g.tensor.nbytes());
  int64_t bad = 0;
  int64_t first_bad = -1;
  for (int64_t i = 0; i < total; ++i) {
    const bool guard = i < static_cast<int64_t>(g.guard) || i >= static_cast<int64_t>(g.guard) + payload;
    if (guard && b[i] != g.pattern) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << bad << " guard bytes of " << g.tensor.describe() << " overwritten, the first at byte "
                    << first_bad - static_cast<int64_t>(g.guard) << " relative to the tensor's start";
}

// ------------------------------------------------------------------------------------------ host data

HostTensor f32(Shape shape, const std::vector<float>& values) {
  return HostTensor::from(shape, values);
}

// `values` in dtype (f32, or bf16/f16 rounded to nearest even).
HostTensor host_of(DType dtype, Shape shape, const std::vector<float>& values) {
  if (dtype == DType::F32) return f32(shape, values);
  HostTensor out(dtype, shape);
  auto* bits = static_cast<uint16_t*>(out.tensor().data());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return out;
}

// Random bit patterns: every class of value (NaN payloads with the quiet bit clear, subnormals, infinities).
HostTensor random_bits(DType dtype, Shape shape, uint32_t seed) {
  HostTensor out(dtype, shape);
  std::mt19937 gen(seed);
  const int64_t n = shape.numel();
  if (dtype_size(dtype) == 2) {
    auto* bits = static_cast<uint16_t*>(out.tensor().data());
    for (int64_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(gen());
  } else {
    auto* bits = static_cast<uint32_t*>(out.tensor().data());
    for (int64_t i = 0; i < n; ++i) bits[i] = static_cast<uint32_t>(gen());
  }
  return out;
}

std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = dist(gen);
  return out;
}

std::vector<float> normal(int64_t n, uint32_t seed, float sigma) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> out(static_cast<size_t>(n));
  for (float& v : out) v = dist(gen);
  return out;
}

// Puts each of `specials` at `copies` random positions of v.
void sprinkle(std::vector<float>& v, uint32_t seed, const std::vector<float>& specials, int copies = 1) {
  if (v.empty()) return;
  std::mt19937 gen(seed);
  for (int c = 0; c < copies; ++c) {
    for (float s : specials) v[gen() % v.size()] = s;
  }
}

// ------------------------------------------------------------------------------------------ comparisons

struct Tolerance {
  double abs = 0.0;
  double rel = 0.0;
};
constexpr Tolerance kExact{0.0, 0.0};

// f32 results: non-finite reference values matched exactly, finite ones within abs + rel * |want| by finite
// values. Reports the first few mismatches with their index.
void expect_close(const HostTensor& got, const HostTensor& want, Tolerance tol) {
  ASSERT_EQ(got.tensor().shape(), want.tensor().shape());
  ASSERT_EQ(got.tensor().dtype(), DType::F32);
  ASSERT_EQ(want.tensor().dtype(), DType::F32);
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  const int64_t n = want.tensor().numel();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool ok;
    if (std::isnan(w[i])) {
      ok = std::isnan(g[i]);
    } else if (std::isinf(w[i])) {
      ok = g[i] == w[i];
    } else {
      ok = std::isfinite(g[i]) && std::fabs(static_cast<double>(g[i]) - w[i]) <=
                                      tol.abs + tol.rel * std::fabs(static_cast<double>(w[i]));
    }
    if (!ok && ++bad <= 8) {
      ADD_FAILURE() << "index " << i << ": got " << g[i] << ", want " << w[i] << " (difference "
                    << static_cast<double>(g[i]) - w[i] << ", tolerance " << tol.abs << " + " << tol.rel
                    << " * |want|)";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n << " elements differ";
}

// The same bytes (data movement and integer results: cast, embedding, argmax, top_k).
void expect_same_bits(const HostTensor& got, const HostTensor& want) {
  ASSERT_EQ(got.tensor().shape(), want.tensor().shape());
  ASSERT_EQ(got.tensor().dtype(), want.tensor().dtype());
  const size_t element = dtype_size(want.tensor().dtype());
  const auto* g = static_cast<const uint8_t*>(got.tensor().data());
  const auto* w = static_cast<const uint8_t*>(want.tensor().data());
  const int64_t n = want.tensor().numel();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(g + i * element, w + i * element, element) == 0) continue;
    if (++bad <= 8) {
      uint64_t gb = 0;
      uint64_t wb = 0;
      std::memcpy(&gb, g + i * element, element);
      std::memcpy(&wb, w + i * element, element);
      ADD_FAILURE() << "element " << i << ": got bits 0x" << std::hex << gb << ", want 0x" << wb << std::dec;
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n << " elements differ";
}

std::string shape_name(const std::vector<int64_t>& dims) {
  std::string name;
  for (int64_t d : dims) name += (name.empty() ? "" : "x") + std::to_string(d);
  return name;
}

// ===================================================================================== backend basics

class CudaBackendBasics : public GpuTest {};

TEST_F(CudaBackendBasics, DeviceAndZeroByteBuffers) {
  EXPECT_EQ(gpu().device(), (Device{DeviceKind::Cuda, 0}));
  Buffer empty = gpu().allocate(0);
  EXPECT_EQ(empty.bytes(), 0u);
  EXPECT_EQ(empty.device(), gpu().device());
  // Empty tensors copy and go through ops without launching anything.
  Tensor none = empty.view(DType::F32, Shape{0, 5});
  HostTensor host_none(DType::F32, Shape{0, 5});
  gpu().copy(host_none, none);
  gpu().copy(none, host_none);
  ops::softmax(gpu(), none, none);
  ops::rms_norm(gpu(), none, upload(f32({5}, {1, 1, 1, 1, 1})), 1e-6f, NormWeight::Plain, none);
  ops::silu(gpu(), none, none);
  Tensor no_ids = empty.view(DType::I32, Shape{0});
  ops::argmax(gpu(), none, no_ids);
  ops::embedding(gpu(), upload(f32({2, 5}, std::vector<float>(10, 1.0f))), no_ids, none);
  ops::cast(gpu(), none, empty.view(DType::BF16, Shape{0, 5}));
  gpu().synchronize();
}

TEST_F(CudaBackendBasics, CopiesRoundTripBitForBit) {
  // Host -> device -> device -> host, for random f32 bits (NaN payloads included) and i64 values.
  HostTensor bits = random_bits(DType::F32, Shape{1031, 7}, 1);
  Guarded a = upload(bits);
  Guarded b = output(DType::F32, Shape{1031, 7});
  gpu().copy(a, b);
  expect_same_bits(download(b), bits);
  expect_guards_intact(b);
  std::vector<int64_t> longs(999);
  for (size_t i = 0; i < longs.size(); ++i) longs[i] = (static_cast<int64_t>(i) << 40) - 12345;
  HostTensor ids = HostTensor::from<int64_t>(Shape{999}, longs);
  expect_same_bits(download(upload(ids)), ids);
  // Host to host through the CUDA backend is a plain copy.
  HostTensor again(DType::F32, Shape{1031, 7});
  gpu().copy(bits, again);
  expect_same_bits(again, bits);
}

// A source whose rows are further apart than their width (a column block of a wider matrix) copies into a
// contiguous destination, device to device and host to device, and nothing past the block is read.
TEST_F(CudaBackendBasics, CopyFromAColumnBlock) {
  const int64_t rows = 37, width = 19, stride = 64;
  std::vector<float> values(static_cast<size_t>(rows * stride));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  HostTensor wide = f32({rows, stride}, values);
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 5; c < 5 + width; ++c) want.push_back(values[static_cast<size_t>(r * stride + c)]);
  }
  Guarded device_wide = upload(wide);
  Guarded out = output(DType::F32, Shape{rows, width});
  gpu().copy(device_wide.tensor.slice(1, 5, 5 + width), out);
  EXPECT_EQ(download(out).to_vector<float>(), want);
  expect_guards_intact(out);
  Guarded from_host = output(DType::F32, Shape{rows, width});
  gpu().copy(wide.tensor().slice(1, 5, 5 + width), from_host);
  EXPECT_EQ(download(from_host).to_vector<float>(), want);
  expect_guards_intact(from_host);
  // A destination that is not contiguous is refused.
  EXPECT_THROW(gpu().copy(out, device_wide.tensor.slice(1, 5, 5 + width)), Error);
}

TEST_F(CudaBackendBasics, CopyRejectsMismatchesAndOverlap) {
  Guarded a = upload(f32({4, 4}, std::vector<float>(16, 1.0f)));
  HostTensor wrong_shape(DType::F32, Shape{16});
  EXPECT_THROW(gpu().copy(a, wrong_shape), Error);
  HostTensor wrong_dtype(DType::I32, Shape{4, 4});
  EXPECT_THROW(gpu().copy(a, wrong_dtype), Error);
  HostTensor square(DType::F32, Shape{4, 4});
  EXPECT_THROW(gpu().copy(a.tensor.transpose(0, 1), square), Error);  // not contiguous
  // Device ranges that partly overlap are refused; the same range is a no-op.
  EXPECT_THROW(gpu().copy(a.tensor.slice(0, 0, 2), a.tensor.slice(0, 1, 3)), Error);
  gpu().copy(a.tensor, a.tensor);
  expect_same_bits(download(a), f32({4, 4}, std::vector<float>(16, 1.0f)));
}

TEST_F(CudaBackendBasics, CopyBatchCopiesEverySliceAndLeavesTheRestAlone) {
  // Row slices of a source packed into a destination in one batch (a layer's cache gathers), an empty one
  // among them; a batch with a host tensor goes copy by copy; mismatched lists and shapes are refused.
  constexpr int64_t kRows = 37, kWidth = 5;
  HostTensor bits = random_bits(DType::F32, Shape{kRows, kWidth}, 2);
  Guarded source = upload(bits);
  Guarded destination = output(DType::F32, Shape{kRows, kWidth});
  const std::vector<std::pair<int64_t, int64_t>> slices = {{0, 20}, {25, 3}, {3, 0}, {30, 7}};  // begin, rows
  std::vector<Tensor> sources, destinations;
  int64_t packed = 0;
  for (const auto& [begin, rows] : slices) {
    sources.push_back(source.tensor.slice(0, begin, begin + rows));
    destinations.push_back(destination.tensor.slice(0, packed, packed + rows));
    packed += rows;
  }
  gpu().copy_batch(sources, destinations);
  const HostTensor got = download(destination);
  const auto* want = static_cast<const char*>(bits.tensor().data());
  const auto* have = static_cast<const char*>(got.tensor().data());
  constexpr size_t kRowBytes = kWidth * sizeof(float);
  packed = 0;
  for (const auto& [begin, rows] : slices) {
    EXPECT_EQ(0, std::memcmp(have + packed * kRowBytes, want + begin * kRowBytes, rows * kRowBytes))
        << "the slice from row " << begin;
    packed += rows;
  }
  for (size_t i = packed * kRowBytes; i < kRows * kRowBytes; ++i) {  // rows no copy wrote
    ASSERT_EQ(static_cast<uint8_t>(have[i]), kOutputGuard) << "byte " << i;
  }
  expect_guards_intact(destination);

  HostTensor to_host(DType::F32, Shape{20, kWidth});
  gpu().copy_batch(std::vector<Tensor>{sources[0]}, std::vector<Tensor>{to_host.tensor()});
  EXPECT_EQ(0, std::memcmp(to_host.tensor().data(), want, 20 * kRowBytes));
  EXPECT_THROW(gpu().copy_batch(sources, std::vector<Tensor>{destinations[0]}), Error);
  EXPECT_THROW(gpu().copy_batch(std::vector<Tensor>{sources[0]}, std::vector<Tensor>{destinations[1]}),
               Error);
}

TEST_F(CudaBackendBasics, CopyBatchOfMoreCopiesThanOneLaunchTakes) {
  // 150 rows of 48 bytes (16-byte aligned: copied a word at a time) reversed in one batch, which goes out in
  // several launches of at most cuda::kMaxListedCopies copies.
  constexpr int64_t kRows = 150, kWidth = 12;
  static_assert(kRows > 2 * cuda::kMaxListedCopies);
  HostTensor bits = random_bits(DType::F32, Shape{kRows, kWidth}, 3);
  Guarded source = upload(bits);
  Guarded destination = output(DType::F32, Shape{kRows, kWidth});
  std::vector<Tensor> sources, destinations;
  for (int64_t r = 0; r < kRows; ++r) {
    sources.push_back(source.tensor.slice(0, r, r + 1));
    destinations.push_back(destination.tensor.slice(0, kRows - 1 - r, kRows - r));
  }
  gpu().copy_batch(sources, destinations);
  const HostTensor got = download(destination);
  constexpr size_t kRowBytes = kWidth * sizeof(float);
  const auto* want = static_cast<const char*>(bits.tensor().data());
  const auto* have = static_cast<const char*>(got.tensor().data());
  for (int64_t r = 0; r < kRows; ++r) {
    EXPECT_EQ(0, std::memcmp(have + (kRows - 1 - r) * kRowBytes, want + r * kRowBytes, kRowBytes))
        << "row " << r;
  }
  expect_guards_intact(destination);
}

// ============================================================================================== cast

class CudaCast : public GpuParamTest<int64_t> {};

// Every dtype pair, bit for bit: both backends run the same integer rounding (half.h and its device copy).
TEST_P(CudaCast, EveryDtypePairMatchesTheCpuBitForBit) {
  const int64_t n = GetParam();
  const DType dtypes[] = {DType::F32, DType::BF16, DType::F16};
  for (DType from : dtypes) {
    // 16-bit sources: random bit patterns. f32 sources: random bits, plus values on and near the bf16/f16
    // rounding ties, the f16 overflow edge and specials, which random bits rarely hit.
    HostTensor source = random_bits(from, Shape{n}, 10 + static_cast<uint32_t>(from));
    if (from == DType::F32) {
      std::vector<float> v = uniform(n, 3, -70000.0f, 70000.0f);
      for (int64_t i = 0; i < n; i += 2) std::memcpy(&v[i], source.data<float>() + i, sizeof(float));
      sprinkle(v, 4,
               {1.00390625f, 1.01171875f, 1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 65504.0f, 65519.0f, 65520.0f,
                1e-8f, -6e-8f, 3e-5f, kInf, -kInf, kNaN, -0.0f, kMax, 1e-45f});
      source = f32(Shape{n}, v);
    }
    for (DType to : dtypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
      HostTensor want(to, Shape{n});
      ops::cast(cpu(), source, want);
      Guarded x = upload(source);
      Guarded out = output(to, Shape{n});
      ops::cast(gpu(), x, out);
      expect_same_bits(download(out), want);
      expect_guards_intact(out);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaCast, ::testing::Values(1, 7, 33, 1000, 100003));

class CudaCastPatterns : public GpuTest {};

TEST_F(CudaCastPatterns, EverySixteenBitPatternWidensAndConvertsLikeTheCpu) {
  for (DType from : {DType::BF16, DType::F16}) {
    HostTensor all(from, Shape{65536});
    auto* bits = static_cast<uint16_t*>(all.tensor().data());
    for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
    Guarded x = upload(all);
    for (DType to : {DType::F32, from == DType::BF16 ? DType::F16 : DType::BF16}) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
      HostTensor want(to, Shape{65536});
      ops::cast(cpu(), all, want);
      Guarded out = output(to, Shape{65536});
      ops::cast(gpu(), x, out);
      expect_same_bits(download(out), want);
      expect_guards_intact(out);
    }
  }
}

// ========================================================================================= embedding

struct EmbeddingCase {
  int64_t vocab, width, rows;
};

class CudaEmbedding : public GpuParamTest<EmbeddingCase> {};

// Rows are copied and widened exactly: bit-for-bit equality for every table and id dtype.
TEST_P(CudaEmbedding, GathersLikeTheCpuForEveryTableAndIdDtype) {
  const auto [vocab, width, rows] = GetParam();
  std::mt19937 gen(21);
  std::vector<int64_t> ids(static_cast<size_t>(rows));
  for (auto& id : ids) id = static_cast<int64_t>(gen() % static_cast<uint32_t>(vocab));
  ids.front() = vocab - 1;  // the last row of the table
  for (DType table_dtype : {DType::F32, DType::BF16, DType::F16}) {
    HostTensor table = random_bits(table_dtype, Shape{vocab, width}, 22);
    Guarded device_table = upload(table);
    for (DType id_dtype : {DType::I32, DType::I64}) {
      SCOPED_TRACE(std::string(dtype_name(table_dtype)) + " table, " + std::string(dtype_name(id_dtype)) +
                   " ids");
      HostTensor host_ids(id_dtype, Shape{rows});
      for (int64_t i = 0; i < rows; ++i) {
        if (id_dtype == DType::I32) {
          host_ids.data<int32_t>()[i] = static_cast<int32_t>(ids[i]);
        } else {
          host_ids.data<int64_t>()[i] = ids[i];
        }
      }
      HostTensor want(DType::F32, Shape{rows, width});
      ops::embedding(cpu(), table, host_ids, want);
      Guarded out = output(DType::F32, Shape{rows, width});
      ops::embedding(gpu(), device_table, upload(host_ids), out);
      expect_same_bits(download(out), want);
      expect_guards_intact(out);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaEmbedding,
                         ::testing::Values(EmbeddingCase{1, 1, 1}, EmbeddingCase{50, 7, 7},
                                           EmbeddingCase{1000, 33, 1999}, EmbeddingCase{3, 1029, 37},
                                           EmbeddingCase{50257, 64, 100}),
                         [](const auto& info) {
                           return shape_name({info.param.vocab, info.param.width, info.param.rows});
                         });

class CudaEmbeddingErrors : public GpuTest {};

// An id outside the table is an Error naming the id and its index (the first bad index), as on the CPU. The
// call itself does not wait for the device: the Error comes at the next synchronize() or copy to the host,
// and the backend stays usable after it.
TEST_F(CudaEmbeddingErrors, RejectsIdsOutsideTheTableAtTheNextWaitAndStaysUsable) {
  const std::vector<float> rows = {0, 0.5f, 1, -1, -2, -3, 4, 5, 6, 0.25f, -0.25f, 8};
  Guarded table = upload(f32({4, 3}, rows));
  auto message_for = [&](const HostTensor& ids) -> std::string {
    Guarded device_ids = upload(ids);
    Guarded out = output(DType::F32, Shape{ids.tensor().dim(0), 3});
    ops::embedding(gpu(), table, device_ids, out);
    try {
      gpu().synchronize();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  auto i32 = [](const std::vector<int32_t>& v) { return HostTensor::from(Shape{int64_t(v.size())}, v); };
  std::string m = message_for(i32({0, 4}));
  EXPECT_NE(m.find("id 4 at index 1 is outside [0, 4)"), std::string::npos) << m;
  m = message_for(i32({-1, 0}));
  EXPECT_NE(m.find("id -1 at index 0"), std::string::npos) << m;
  m = message_for(HostTensor::from<int64_t>(Shape{2}, {1, int64_t{1} << 33}));
  EXPECT_NE(m.find("id 8589934592 at index 1"), std::string::npos) << m;
  m = message_for(i32({0, 1, 9, 2, -7, 3}));  // two bad ids: the first index is named
  EXPECT_NE(m.find("id 9 at index 2"), std::string::npos) << m;
  EXPECT_EQ(message_for(i32({3, 0})), "no error");  // raising the Error cleared the record

  // Of several calls before a wait, the first with a bad id is named, with the id it had when it ran; a copy
  // to the host raises it too.
  Guarded first_ids = upload(i32({0, 2, 7}));
  Guarded out = output(DType::F32, Shape{3, 3});
  ops::embedding(gpu(), table, first_ids, out);
  gpu().copy(upload(i32({1, 1, 1})), first_ids);  // overwritten before the host looks
  ops::embedding(gpu(), table, upload(i32({-5, 1, 1})), out);
  HostTensor host_out(DType::F32, Shape{3, 3});
  try {
    gpu().copy(out, host_out);
    ADD_FAILURE() << "no error from the copy to the host";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id 7 at index 2 is outside [0, 4)"), std::string::npos) << e.what();
  }
  gpu().synchronize();  // nothing left to raise

  ops::embedding(gpu(), table, upload(i32({3, 0, 3})), out);
  expect_same_bits(download(out), f32({3, 3}, {0.25f, -0.25f, 8, 0, 0.5f, 1, 0.25f, -0.25f, 8}));
}

// ============================================================================================= norms

struct NormCase {
  int64_t rows, width;
};

std::string norm_case_name(const ::testing::TestParamInfo<NormCase>& info) {
  return shape_name({info.param.rows, info.param.width});
}

// Rows of uniform values in [-3, 3); when there are enough rows, a few special ones: a NaN, +inf, -inf, all
// zeros (only eps keeps the rms nonzero), and values near 1e30 (their squares need the double sum).
std::vector<float> norm_input(int64_t rows, int64_t width, uint32_t seed) {
  std::vector<float> v = uniform(rows * width, seed, -3.0f, 3.0f);
  if (rows >= 7) {
    v[0 * width + width / 2] = kNaN;
    v[1 * width] = kInf;
    v[2 * width + width - 1] = -kInf;
    std::fill(v.begin() + 3 * width, v.begin() + 4 * width, 0.0f);
    for (int64_t i = 0; i < width; ++i) v[4 * width + i] *= 1e30f;
  }
  return v;
}

class CudaRmsNorm : public GpuParamTest<NormCase> {};

// Both backends sum the squares in double (in different orders, ~1e-16 relative apart), round 1/rms to f32
// once, and apply the same two f32 multiplies (and the same f32 1 + w): results agree to 2 ulps
// (rel 2.4e-7), exactly in practice.
TEST_P(CudaRmsNorm, MatchesTheCpuForEveryModeAndWeightDtypeInPlaceToo) {
  const auto [rows, width] = GetParam();
  for_each_alignment([&] {
    const Tolerance tol{1e-37, 2.4e-7};
    const std::vector<float> xv = norm_input(rows, width, 31);
    const std::vector<float> wv = uniform(width, 32, -2.0f, 2.0f);
    HostTensor x = f32({rows, width}, xv);
    for (NormWeight mode : {NormWeight::Plain, NormWeight::OnePlus}) {
      for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
        SCOPED_TRACE(std::string(mode == NormWeight::Plain ? "plain " : "one-plus ") +
                     std::string(dtype_name(dtype)));
        HostTensor w = host_of(dtype, {width}, wv);
        HostTensor want(DType::F32, Shape{rows, width});
        ops::rms_norm(cpu(), x, w, 1e-6f, mode, want);
        Guarded dx = upload(x);
        Guarded dw = upload(w);
        Guarded out = output(DType::F32, Shape{rows, width});
        ops::rms_norm(gpu(), dx, dw, 1e-6f, mode, out);
        expect_close(download(out), want, tol);
        expect_guards_intact(out);
        ops::rms_norm(gpu(), dx, dw, 1e-6f, mode, dx);  // in place
        expect_close(download(dx), want, tol);
        expect_guards_intact(dx);
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRmsNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{7, 33},
                                           NormCase{37, 1029}, NormCase{9, 4099}, NormCase{2, 8192},
                                           NormCase{(1 << 20) + 3, 2}),
                         norm_case_name);

class CudaAddRmsNorm : public GpuParamTest<NormCase> {};

// The fused op is add then rms_norm: bit for bit the two ops on the GPU (the sum is rounded and stored, then
// normed from the stored values), for f32 and bf16 rows, with separate outputs and with both aliasings a
// transformer layer uses (the sum into x and the norm into the residual, or the other way round); and, in
// f32, within CudaRmsNorm's tolerance of the CPU's add then rms_norm.
TEST_P(CudaAddRmsNorm, IsAddThenRmsNormBitForBitWhateverTheOutputsAlias) {
  const auto [rows, width] = GetParam();
  for_each_alignment([&] {
    const Shape shape{rows, width};
    const std::vector<float> xv = norm_input(rows, width, 51);
    const std::vector<float> rv = uniform(rows * width, 52, -3.0f, 3.0f);
    const HostTensor w = host_of(DType::BF16, {width}, uniform(width, 53, -2.0f, 2.0f));
    enum class Outputs { Separate, SumIntoXNormIntoResidual, SumIntoResidualNormIntoX };
    for (DType dtype : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)));
      const HostTensor x = host_of(dtype, shape, xv);
      const HostTensor r = host_of(dtype, shape, rv);
      Guarded dw = upload(w);
      Guarded sum_ref = output(dtype, shape);
      Guarded norm_ref = output(dtype, shape);
      ops::add(gpu(), upload(x), upload(r), sum_ref);
      ops::rms_norm(gpu(), sum_ref, dw, 1e-6f, NormWeight::Plain, norm_ref);
      const HostTensor want_sum = download(sum_ref);
      const HostTensor want_norm = download(norm_ref);
      if (dtype == DType::F32) {
        HostTensor cpu_sum(DType::F32, shape);
        HostTensor cpu_norm(DType::F32, shape);
        ops::add(cpu(), x, r, cpu_sum);
        ops::rms_norm(cpu(), cpu_sum, w, 1e-6f, NormWeight::Plain, cpu_norm);
        expect_close(want_norm, cpu_norm, Tolerance{1e-37, 2.4e-7});
      }
      for (Outputs outputs :
           {Outputs::Separate, Outputs::SumIntoXNormIntoResidual, Outputs::SumIntoResidualNormIntoX}) {
        SCOPED_TRACE(static_cast<int>(outputs));
        Guarded dx = upload(x);
        Guarded dr = upload(r);
        Guarded sum = output(dtype, shape);
        Guarded norm = output(dtype, shape);
        const Guarded& sum_out = outputs == Outputs::Separate                   ? sum
                                 : outputs == Outputs::SumIntoXNormIntoResidual ? dx
                                                                                : dr;
        const Guarded& norm_out = outputs == Outputs::Separate                   ? norm
                                  : outputs == Outputs::SumIntoXNormIntoResidual ? dr
                                                                                 : dx;
        ops::add_rms_norm(gpu(), dx, dr, dw, 1e-6f, NormWeight::Plain, sum_out, norm_out);
        expect_same_bits(download(sum_out), want_sum);
        expect_same_bits(download(norm_out), want_norm);
        expect_guards_intact(sum_out);
        expect_guards_intact(norm_out);
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAddRmsNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 33}, NormCase{37, 1029},
                                           NormCase{9, 4099}, NormCase{3, 4096}),
                         norm_case_name);

class CudaLayerNorm : public GpuParamTest<NormCase> {};

// Mean, variance and the centred value are double on both sides (sums in different orders), rounded to f32
// once; the f32 multiply by w and add of b are the same operations. With |x_hat| <= ~1.8 for these rows and
// |w|, |b| <= 1, one ulp of the normalized value and one of the sum stay below 2.4e-7 each: abs 1e-6.
TEST_P(CudaLayerNorm, MatchesTheCpuWithAndWithoutBiasInPlaceToo) {
  const auto [rows, width] = GetParam();
  const Tolerance tol{1e-6, 2.4e-7};
  std::vector<float> xv = norm_input(rows, width, 41);
  if (rows >= 7) {  // a row far from zero: 4096 plus a few f32 ulps there
    for (int64_t i = 0; i < width; ++i) xv[5 * width + i] = 4096.0f + static_cast<float>(i % 4) * 0x1p-11f;
  }
  const std::vector<float> wv = uniform(width, 42, -1.0f, 1.0f);
  const std::vector<float> bv = uniform(width, 43, -1.0f, 1.0f);
  HostTensor x = f32({rows, width}, xv);
  struct Dtypes {
    DType weight;
    std::optional<DType> bias;
  };
  for (const Dtypes& d :
       {Dtypes{DType::F32, std::nullopt}, Dtypes{DType::F32, DType::F32}, Dtypes{DType::BF16, DType::BF16},
        Dtypes{DType::F16, DType::F16}, Dtypes{DType::BF16, std::nullopt}, Dtypes{DType::F32, DType::F16}}) {
    SCOPED_TRACE("weight " + std::string(dtype_name(d.weight)) + ", bias " +
                 (d.bias ? std::string(dtype_name(*d.bias)) : std::string("none")));
    HostTensor w = host_of(d.weight, {width}, wv);
    std::optional<HostTensor> b;
    if (d.bias) b.emplace(host_of(*d.bias, {width}, bv));
    HostTensor want(DType::F32, Shape{rows, width});
    ops::layer_norm(cpu(), x, w, b ? std::optional<Tensor>(b->tensor()) : std::nullopt, 1e-5f, want);
    Guarded dx = upload(x);
    Guarded dw = upload(w);
    std::optional<Guarded> db;
    if (b) db.emplace(upload(*b));
    const std::optional<Tensor> device_bias = db ? std::optional<Tensor>(db->tensor) : std::nullopt;
    Guarded out = output(DType::F32, Shape{rows, width});
    ops::layer_norm(gpu(), dx, dw, device_bias, 1e-5f, out);
    expect_close(download(out), want, tol);
    expect_guards_intact(out);
    ops::layer_norm(gpu(), dx, dw, device_bias, 1e-5f, dx);  // in place
    expect_close(download(dx), want, tol);
    expect_guards_intact(dx);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLayerNorm,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{7, 33},
                                           NormCase{37, 1029}, NormCase{9, 4099}, NormCase{2, 8192}),
                         norm_case_name);

// ============================================================================================== rope

struct RopeCase {
  int64_t tokens, heads, head_dim, rotary_dim;
};

class CudaRope : public GpuParamTest<RopeCase> {};

// cos and sin come from the same f32 angle, taken in double (CUDA's and glibc's are both within ~1 double
// ulp) and rounded to f32 once, so the tables agree except for a value within ~1e-16 of an f32 rounding
// boundary; the rotation is the same four f32 operations. Inputs in [-1, 1) and factors <= 1.25 keep |out|
// <= 2.5: one ulp of a table entry (1.2e-7) times |a| + |b| <= 2, plus a flipped rounding of the result
// (2.4e-7), stays below abs 1e-6. Pass-through features are copies (covered by the same bound).
TEST_P(CudaRope, MatchesTheCpuForBothLayoutsAndFactorsInPlaceToo) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  const Tolerance tol{1e-6, 0.0};
  std::vector<float> xv = uniform(tokens * heads * head_dim, 51, -1.0f, 1.0f);
  sprinkle(xv, 52, {kNaN, kInf, -0.0f});
  std::mt19937 gen(53);
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (auto& p : pos) p = static_cast<int32_t>(gen() % 131072);
  pos.front() = 0;
  if (tokens > 1) pos.back() = 1000000;  // a large position: the f32 angle rounding matters
  HostTensor x = f32({tokens, heads, head_dim}, xv);
  HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  for (double theta : {10000.0, 1000000.0}) {
    HostTensor inv_freq = ops::default_rope_inv_freq(theta, rotary_dim);
    for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
      for (float factor : {1.0f, 1.25f}) {
        SCOPED_TRACE("theta " + std::to_string(theta) +
                     (layout == RopeLayout::HalfSplit ? " half-split" : " interleaved") + " factor " +
                     std::to_string(factor));
        const RopeParams params{layout, rotary_dim, factor};
        HostTensor want(DType::F32, Shape{tokens, heads, head_dim});
        ops::rope(cpu(), x, positions, inv_freq, params, want);
        Guarded dx = upload(x);
        Guarded dpos = upload(positions);
        Guarded dfreq = upload(inv_freq);
        Guarded out = output(DType::F32, Shape{tokens, heads, head_dim});
        ops::rope(gpu(), dx, dpos, dfreq, params, out);
        expect_close(download(out), want, tol);
        expect_guards_intact(out);
        ops::rope(gpu(), dx, dpos, dfreq, params, dx);  // in place
        expect_close(download(dx), want, tol);
        expect_guards_intact(dx);
      }
    }
  }
}

// x as a column block of a wider matrix (a fused q/k/v projection's output: tokens further apart than their
// heads), into a contiguous out: the CPU's rotation of the same block, as above.
TEST_P(CudaRope, TakesTokensFurtherApartThanTheirHeads) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  if (head_dim > 1024) GTEST_SKIP() << "covered by the smaller heads";
  const int64_t width = (3 * heads + 1) * head_dim;  // the block starts one head in
  HostTensor wide = f32({tokens, width}, uniform(tokens * width, 54, -1.0f, 1.0f));
  const auto block = [&](const Tensor& t) {
    const Tensor columns = t.slice(1, head_dim, (heads + 1) * head_dim);
    return Tensor(columns.data(), DType::F32, Shape{tokens, heads, head_dim}, Shape{width, head_dim, 1},
                  columns.device());
  };
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(3 * t + 1);
  HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
  const RopeParams params{RopeLayout::HalfSplit, rotary_dim, 1.0f};
  HostTensor want(DType::F32, Shape{tokens, heads, head_dim});
  ops::rope(cpu(), block(wide), positions, inv_freq, params, want);
  Guarded device_wide = upload(wide);
  Guarded out = output(DType::F32, Shape{tokens, heads, head_dim});
  ops::rope(gpu(), block(device_wide), upload(positions), upload(inv_freq), params, out);
  expect_close(download(out), want, Tolerance{1e-6, 0.0});
  expect_guards_intact(out);
}

// rope_qkv: q and k rotated out of a fused product's output and v copied, against the CPU's composition of
// rope, rope and copy (Backend::rope_qkv), with half as many kv heads (GQA) and a partial rotary dim: q and
// k as above, v bit for bit, each output's guards intact. The product's output is contiguous, and a column
// block of a wider matrix; tensors 8- and 16-byte aligned (the kernel's 16-byte path).
TEST_P(CudaRope, FusedQkvHeadsMatchTheCpu) {
  const auto [tokens, heads, head_dim, rotary_dim] = GetParam();
  if (head_dim > 1024) GTEST_SKIP() << "covered by the smaller heads";
  const int64_t q_heads = 2 * heads, kv_heads = heads;
  const int64_t width = (q_heads + 2 * kv_heads) * head_dim;
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(5 * t + 2);
  const HostTensor positions = HostTensor::from(Shape{tokens}, pos);
  const HostTensor inv_freq = ops::default_rope_inv_freq(10000.0, rotary_dim);
  for (const int64_t padding : {int64_t{0}, head_dim}) {
    const int64_t stride = width + padding;
    std::vector<float> values = uniform(tokens * stride, 55, -1.0f, 1.0f);
    sprinkle(values, 56, {kNaN, kInf, -0.0f});
    const HostTensor wide = f32({tokens, stride}, values);
    const auto columns = [&](const Tensor& t) { return t.slice(1, padding, padding + width); };
    for (RopeLayout layout : {RopeLayout::HalfSplit, RopeLayout::Interleaved}) {
      SCOPED_TRACE(std::string(layout == RopeLayout::HalfSplit ? "half-split" : "interleaved") +
                   (padding > 0 ? ", a column block" : ", contiguous"));
      const RopeParams params{layout, rotary_dim, 1.25f};
      HostTensor q(DType::F32, Shape{tokens, q_heads, head_dim});
      HostTensor k(DType::F32, Shape{tokens, kv_heads, head_dim});
      HostTensor v(DType::F32, Shape{tokens, kv_heads, head_dim});
      ops::rope_qkv(cpu(), columns(wide), positions, inv_freq, params, q, k, v);
      for_each_alignment([&] {
        const Guarded device_wide = upload(wide);
        const Guarded gq = output(DType::F32, q.tensor().shape());
        const Guarded gk = output(DType::F32, k.tensor().shape());
        const Guarded gv = output(DType::F32, v.tensor().shape());
        ops::rope_qkv(gpu(), columns(device_wide), upload(positions), upload(inv_freq), params, gq, gk, gv);
        expect_close(download(gq), q, Tolerance{1e-6, 0.0});
        expect_close(download(gk), k, Tolerance{1e-6, 0.0});
        expect_same_bits(download(gv), v);
        for (const Guarded* g : {&gq, &gk, &gv}) expect_guards_intact(*g);
      });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaRope,
    ::testing::Values(RopeCase{1, 1, 2, 2}, RopeCase{7, 3, 6, 4}, RopeCase{37, 5, 24, 16},
                      RopeCase{33, 8, 64, 64}, RopeCase{5, 2, 128, 96}, RopeCase{1000, 1, 32, 32},
                      // rotary_dim / 2 = 4608 frequencies: more than one shared table
                      RopeCase{3, 2, 9218, 9216}),
    [](const auto& info) {
      return shape_name({info.param.tokens, info.param.heads, info.param.head_dim, info.param.rotary_dim});
    });

// ======================================================================================= element-wise

// Inputs for the element-wise ops: uniform in [-12, 12) with specials sprinkled in, among them the points
// where torch's f32 kernels give NaN (silu(-inf), gelu(-inf)) and results that underflow to subnormals or -0.
std::vector<float> activation_input(int64_t n, uint32_t seed) {
  std::vector<float> v = uniform(n, seed, -12.0f, 12.0f);
  sprinkle(v, seed + 1,
           {kNaN, kInf, -kInf, -0.0f, 0.0f, -100.0f, 100.0f, -1e-30f, 1e-40f, 1e30f, -1e30f, -88.0f, 88.0f,
            -745.0f, kMax, -kMax});
  return v;
}

class CudaAdd : public GpuParamTest<int64_t> {};

// One f32 addition per element on both sides: exact (NaN where the CPU has NaN).
TEST_P(CudaAdd, SameShapeMatchesTheCpuIntoEitherOperand) {
  const int64_t n = GetParam();
  HostTensor a = f32({n}, activation_input(n, 61));
  HostTensor b = f32({n}, activation_input(n, 62));
  HostTensor want(DType::F32, Shape{n});
  ops::add(cpu(), a, b, want);
  Guarded da = upload(a);
  Guarded db = upload(b);
  Guarded out = output(DType::F32, Shape{n});
  ops::add(gpu(), da, db, out);
  expect_close(download(out), want, kExact);
  expect_guards_intact(out);
  ops::add(gpu(), da, db, da);  // out = a
  expect_close(download(da), want, kExact);
  Guarded da2 = upload(a);
  ops::add(gpu(), da2, db, db);  // out = b
  expect_close(download(db), want, kExact);
  expect_guards_intact(db);
}

// 2^24 + 7 elements need more than the 2^16 blocks x 256 threads of one grid pass.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaAdd, ::testing::Values(1, 7, 33, 1000, 100003, (int64_t{1} << 24) + 7));

class CudaAddRows : public GpuParamTest<NormCase> {};

TEST_P(CudaAddRows, RowBroadcastMatchesTheCpuInPlaceToo) {
  const auto [rows, width] = GetParam();
  HostTensor a = f32({rows, width}, activation_input(rows * width, 63));
  HostTensor b = f32({width}, activation_input(width, 64));
  HostTensor want(DType::F32, Shape{rows, width});
  ops::add(cpu(), a, b, want);
  Guarded da = upload(a);
  Guarded db = upload(b);
  Guarded out = output(DType::F32, Shape{rows, width});
  ops::add(gpu(), da, db, out);
  expect_close(download(out), want, kExact);
  expect_guards_intact(out);
  ops::add(gpu(), da, db, da);
  expect_close(download(da), want, kExact);
  expect_guards_intact(da);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAddRows,
                         ::testing::Values(NormCase{1, 1}, NormCase{7, 7}, NormCase{1001, 67},
                                           NormCase{3, 4099}, NormCase{(1 << 20) + 5, 3}),
                         norm_case_name);

class CudaActivation : public GpuParamTest<int64_t> {};

// Both backends evaluate each activation in double with the same formula and round once to f32; the double
// library functions (exp, erfc) differ by a few double ulps at most, so the f32 results agree except when the
// double lies at an f32 rounding boundary: one f32 ulp (rel 1.2e-7). The gated forms add one f32 multiply of
// that value by up: 2 ulps (rel 2.4e-7). Subnormal results may differ by one subnormal ulp (abs 1e-44).
TEST_P(CudaActivation, EveryActivationMatchesTheCpuInPlaceToo) {
  const int64_t n = GetParam();
  for_each_alignment([&] {
    const Tolerance unary{1e-44, 1.2e-7};
    const Tolerance gated{1e-44, 2.4e-7};
    HostTensor x = f32({n}, activation_input(n, 71));
    HostTensor up = f32({n}, activation_input(n, 72));
    Guarded dx = upload(x);
    Guarded dup = upload(up);
    for (int which = 0; which < 3; ++which) {
      const GeluApproximation approximation = which == 2 ? GeluApproximation::Tanh : GeluApproximation::None;
      const std::string name = which == 0 ? "silu" : which == 1 ? "gelu" : "gelu-tanh";
      SCOPED_TRACE(name);
      auto unary_op = [&](Backend& backend, const Tensor& in, const Tensor& result) {
        if (which == 0) {
          ops::silu(backend, in, result);
        } else {
          ops::gelu(backend, in, approximation, result);
        }
      };
      auto gated_op = [&](Backend& backend, const Tensor& gate, const Tensor& u, const Tensor& result) {
        if (which == 0) {
          ops::swiglu(backend, gate, u, result);
        } else {
          ops::geglu(backend, gate, u, approximation, result);
        }
      };
      HostTensor want(DType::F32, Shape{n});
      unary_op(cpu(), x, want);
      Guarded out = output(DType::F32, Shape{n});
      unary_op(gpu(), dx, out);
      expect_close(download(out), want, unary);
      expect_guards_intact(out);
      Guarded in_place = upload(x);
      unary_op(gpu(), in_place, in_place);
      expect_close(download(in_place), want, unary);

      HostTensor want_gated(DType::F32, Shape{n});
      gated_op(cpu(), x, up, want_gated);
      Guarded gated_out = output(DType::F32, Shape{n});
      gated_op(gpu(), dx, dup, gated_out);
      expect_close(download(gated_out), want_gated, gated);
      expect_guards_intact(gated_out);
      Guarded into_gate = upload(x);
      gated_op(gpu(), into_gate, dup, into_gate);
      expect_close(download(into_gate), want_gated, gated);
      Guarded into_up = upload(up);
      gated_op(gpu(), dx, into_up, into_up);
      expect_close(download(into_up), want_gated, gated);
      expect_guards_intact(into_up);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaActivation,
                         ::testing::Values(1, 7, 33, 1000, 100003, (int64_t{1} << 24) + 7));

// The gated forms on the two column blocks of one [rows, 2 * width] matrix (a fused gate/up projection's
// output, and the other way round), as EveryActivationMatchesTheCpuInPlaceToo's gated tolerance.
TEST_P(CudaActivation, GatedFormsTakeTheHalvesOfOneMatrix) {
  const int64_t width = GetParam();
  for_each_alignment([&] {
    if (width > 100003) GTEST_SKIP() << "covered by the smaller widths";
    const int64_t rows = 5;
    const Tolerance gated{1e-44, 2.4e-7};
    HostTensor both = f32({rows, 2 * width}, activation_input(rows * 2 * width, 73));
    Guarded device_both = upload(both);
    const auto half = [&](const Tensor& t, int64_t which) {
      return t.slice(1, which * width, (which + 1) * width);
    };
    for (int64_t gate_half : {0, 1}) {
      SCOPED_TRACE(gate_half == 0 ? "gate first" : "up first");
      HostTensor want(DType::F32, Shape{rows, width});
      ops::swiglu(cpu(), half(both, gate_half), half(both, 1 - gate_half), want);
      Guarded out = output(DType::F32, Shape{rows, width});
      ops::swiglu(gpu(), half(device_both, gate_half), half(device_both, 1 - gate_half), out);
      expect_close(download(out), want, gated);
      expect_guards_intact(out);
      ops::geglu(cpu(), half(both, gate_half), half(both, 1 - gate_half), GeluApproximation::Tanh, want);
      ops::geglu(gpu(), half(device_both, gate_half), half(device_both, 1 - gate_half),
                 GeluApproximation::Tanh, out);
      expect_close(download(out), want, gated);
    }
  });
}

// =========================================================================================== softmax

struct RowsCase {
  int64_t rows, width;
};

std::string rows_case_name(const ::testing::TestParamInfo<RowsCase>& info) {
  return shape_name({info.param.rows, info.param.width});
}

// Logit-like rows: normal with sigma 4. With at least 8 rows, special ones: a NaN, a +inf, only -inf, some
// -inf among finite values, values near 1e30 (shift invariance), and one dominant entry.
std::vector<float> logit_rows(int64_t rows, int64_t width, uint32_t seed) {
  std::vector<float> v = normal(rows * width, seed, 4.0f);
  if (rows >= 8 && width >= 2) {
    v[0 * width + width / 3] = kNaN;
    v[1 * width + width - 1] = kInf;
    std::fill(v.begin() + 2 * width, v.begin() + 3 * width, -kInf);
    for (int64_t i = 0; i < width; i += 2) v[3 * width + i] = -kInf;
    for (int64_t i = 0; i < width; ++i) v[4 * width + i] += 1e30f;  // mostly 1e30 exactly: a uniform row
    v[5 * width + width / 2] = 60.0f;
  }
  return v;
}

class CudaSoftmax : public GpuParamTest<RowsCase> {};

// Probabilities: each exp differs by <= 3 f32 ulps (glibc expf < 1 ulp, CUDA expf <= 2 ulps), and so does the
// double sum; 1/sum and the product add an ulp each: 8 ulps, rel 1e-6. Tiny probabilities get abs 1e-38.
// Log-probabilities: x - m is exact on both sides; log(sum) differs by <= 3.6e-7 plus one ulp of its f32
// rounding (the sum of exp(x - m) is at most V, so log(sum) <= ln 2^18 < 16 and an ulp <= 9.5e-7), then one
// rounding of the difference (2 ulps: rel 2.4e-7): abs 2.5e-6 + rel 2.4e-7.
TEST_P(CudaSoftmax, BothFormsMatchTheCpuInPlaceToo) {
  const auto [rows, width] = GetParam();
  HostTensor x = f32({rows, width}, logit_rows(rows, width, 81));
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "log_softmax" : "softmax");
    const Tolerance tol = log ? Tolerance{2.5e-6, 2.4e-7} : Tolerance{1e-38, 1e-6};
    auto op = [&](Backend& backend, const Tensor& in, const Tensor& result) {
      if (log) {
        ops::log_softmax(backend, in, result);
      } else {
        ops::softmax(backend, in, result);
      }
    };
    HostTensor want(DType::F32, Shape{rows, width});
    op(cpu(), x, want);
    Guarded dx = upload(x);
    Guarded out = output(DType::F32, Shape{rows, width});
    op(gpu(), dx, out);
    expect_close(download(out), want, tol);
    expect_guards_intact(out);
    op(gpu(), dx, dx);  // in place
    expect_close(download(dx), want, tol);
    expect_guards_intact(dx);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaSoftmax,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 33}, RowsCase{37, 1031},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{1, 262144},
                                           RowsCase{(1 << 20) + 3, 2}),
                         rows_case_name);

// ============================================================================================ vocab

// Logits with many ties (normal sigma 4 rounded to halves) and, with at least 8 rows, rows that test the
// ranking rules: NaNs (the first is the argmax), +inf twice, only -inf, zeros of both signs as the maximum
// (-0 first), the maximum at the last index, the maximum tied at 0 and V/2, two maxima 1e-6 apart.
std::vector<float> ranked_rows(int64_t rows, int64_t vocab, uint32_t seed) {
  std::vector<float> v = normal(rows * vocab, seed, 4.0f);
  for (float& x : v) x = std::round(x * 2.0f) / 2.0f;
  if (rows >= 8 && vocab >= 4) {
    float* r = v.data();
    r[vocab / 2] = kNaN;
    r[vocab - 1] = -kNaN;
    r[vocab / 3] = kNaN;
    r += vocab;
    r[vocab - 2] = kInf;
    r[1] = kInf;
    r += vocab;
    std::fill(r, r + vocab, -kInf);
    r += vocab;
    for (int64_t i = 0; i < vocab; ++i) r[i] = -std::fabs(r[i]) - 1.0f;
    r[vocab - 1] = -0.0f;
    r[vocab / 2] = 0.0f;
    r[1] = -0.0f;
    r += vocab;
    r[vocab - 1] = 40.0f;
    r += vocab;
    r[0] = 40.0f;
    r[vocab / 2] = 40.0f;
    r += vocab;
    r[vocab / 4] = 30.000002f;
    r[vocab - 3] = 30.0f;
  }
  return v;
}

class CudaArgmax : public GpuParamTest<RowsCase> {};

TEST_P(CudaArgmax, MatchesTheCpuExactly) {
  const auto [rows, vocab] = GetParam();
  HostTensor logits = f32({rows, vocab}, ranked_rows(rows, vocab, 91));
  HostTensor want(DType::I32, Shape{rows});
  ops::argmax(cpu(), logits, want);
  Guarded out = output(DType::I32, Shape{rows});
  ops::argmax(gpu(), upload(logits), out);
  expect_same_bits(download(out), want);
  expect_guards_intact(out);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaArgmax,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 7}, RowsCase{8, 33}, RowsCase{9, 1000},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{8, 262144},
                                           RowsCase{(1 << 20) + 3, 1}),
                         rows_case_name);

struct TopKCase {
  int64_t rows, vocab, k;
};

class CudaTopK : public GpuParamTest<TopKCase> {};

// Values and indices bit for bit: the ranking is exact on both sides, and the values are the stored logits.
TEST_P(CudaTopK, MatchesTheCpuExactly) {
  const auto [rows, vocab, k] = GetParam();
  HostTensor logits = f32({rows, vocab}, ranked_rows(rows, vocab, 101));
  HostTensor want_values(DType::F32, Shape{rows, k});
  HostTensor want_indices(DType::I32, Shape{rows, k});
  ops::top_k(cpu(), logits, k, want_values, want_indices);
  Guarded values = output(DType::F32, Shape{rows, k});
  Guarded indices = output(DType::I32, Shape{rows, k});
  ops::top_k(gpu(), upload(logits), k, values, indices);
  expect_same_bits(download(indices), want_indices);
  expect_same_bits(download(values), want_values);
  expect_guards_intact(values);
  expect_guards_intact(indices);
}

std::vector<TopKCase> top_k_cases() {
  std::vector<TopKCase> cases;
  for (int64_t vocab : {1, 7, 33, 1000, 50257, 131072}) {
    const int64_t rows = vocab >= 50000 ? 8 : 9;
    for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{17}, int64_t{64}, int64_t{1000}, int64_t{4096},
                      int64_t{4097}, vocab}) {
      if (k > vocab || (!cases.empty() && cases.back().vocab == vocab && cases.back().k == k)) continue;
      cases.push_back({rows, vocab, k});
    }
  }
  // More rows than the blocks that sort in scratch (64), so those blocks take several rows each.
  cases.push_back({67, 5000, 4097});
  cases.push_back({67, 5000, 5000});
  cases.push_back({70, 3000, 100});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaTopK, ::testing::ValuesIn(top_k_cases()), [](const auto& info) {
  return shape_name({info.param.rows, info.param.vocab, info.param.k});
});

class CudaVocabStats : public GpuParamTest<RowsCase> {};

// argmax exactly. Z = sum exp(d) differs by <= 3 f32 ulps of its terms (expf on either side; the sums are
// double), i.e. rel 3.6e-7: max_prob = 1/Z and margin = -expm1(second - m)/Z (expm1 in double on both) get
// rel 6e-7 with their final rounding. Entropy = log Z - E_p[d]: with d <= 0 and Z >= 1, E_p|d| <= entropy <=
// ln V, so the error is <= 3.6e-7 + 7.2e-7 ln V plus a rounding: abs 5e-7 + 8e-7 ln V.
TEST_P(CudaVocabStats, MatchesTheCpuWithinTheExpfBound) {
  const auto [rows, vocab] = GetParam();
  std::vector<float> v = logit_rows(rows, vocab, 111);
  if (rows >= 8 && vocab >= 4) {  // a tie at the top (margin 0) and two logits 1e-6 apart
    v[6 * vocab + 1] = 50.0f;
    v[6 * vocab + vocab - 1] = 50.0f;
    v[7 * vocab + 2] = 1e-6f + 45.0f;
    v[7 * vocab + 3] = 45.0f;
  }
  HostTensor logits = f32({rows, vocab}, v);
  const Shape shape{rows};
  HostTensor argmax(DType::I32, shape), max_prob(DType::F32, shape), entropy(DType::F32, shape),
      margin(DType::F32, shape);
  ops::vocab_stats(cpu(), logits, {argmax, max_prob, entropy, margin});
  Guarded d_argmax = output(DType::I32, shape), d_max_prob = output(DType::F32, shape),
          d_entropy = output(DType::F32, shape), d_margin = output(DType::F32, shape);
  ops::vocab_stats(gpu(), upload(logits), {d_argmax, d_max_prob, d_entropy, d_margin});
  expect_same_bits(download(d_argmax), argmax);
  {
    SCOPED_TRACE("max_prob");
    expect_close(download(d_max_prob), max_prob, {1e-38, 6e-7});
  }
  {
    SCOPED_TRACE("margin");
    expect_close(download(d_margin), margin, {1e-38, 6e-7});
  }
  {
    SCOPED_TRACE("entropy");
    expect_close(download(d_entropy), entropy, {5e-7 + 8e-7 * std::log(static_cast<double>(vocab)), 0.0});
  }
  for (const Guarded* g : {&d_argmax, &d_max_prob, &d_entropy, &d_margin}) expect_guards_intact(*g);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaVocabStats,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 7}, RowsCase{8, 33}, RowsCase{9, 1000},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{8, 262144},
                                           RowsCase{(1 << 20) + 3, 1}),
                         rows_case_name);

class CudaVocabStatsByHand : public GpuTest {};

// The non-finite rows of the CPU tests, spelled out: the GPU must produce the same NaNs and the same argmax.
TEST_F(CudaVocabStatsByHand, NonFiniteAndHugeRows) {
  const std::vector<float> v = {1,      kNaN,  2,       // NaN: argmax 1, NaN statistics
                                1,      kInf,  2,       // +inf: argmax 1, NaN statistics
                                -kInf,  -kInf, -kInf,   // only -inf: argmax 0, NaN statistics
                                0,      -kInf, 0,       // p = (1/2, 0, 1/2)
                                1e30f,  0,     -1e30f,  // all mass on the first
                                -3e38f, 0,     3e38f};  // the difference overflows to -inf: probability 0
  HostTensor logits = f32({6, 3}, v);
  const Shape shape{6};
  Guarded argmax = output(DType::I32, shape), max_prob = output(DType::F32, shape),
          entropy = output(DType::F32, shape), margin = output(DType::F32, shape);
  ops::vocab_stats(gpu(), upload(logits), {argmax, max_prob, entropy, margin});
  EXPECT_EQ(download(argmax).to_vector<int32_t>(), (std::vector<int32_t>{1, 1, 0, 0, 0, 2}));
  const std::vector<float> p = download(max_prob).to_vector<float>();
  const std::vector<float> h = download(entropy).to_vector<float>();
  const std::vector<float> m = download(margin).to_vector<float>();
  for (int row = 0; row < 3; ++row) {
    EXPECT_TRUE(std::isnan(p[row]) && std::isnan(h[row]) && std::isnan(m[row])) << "row " << row;
  }
  EXPECT_FLOAT_EQ(p[3], 0.5f);
  EXPECT_FLOAT_EQ(h[3], 0.6931471805599453f);
  EXPECT_EQ(m[3], 0.0f);
  for (int row = 4; row < 6; ++row) {
    EXPECT_EQ(p[row], 1.0f) << "row " << row;
    EXPECT_EQ(h[row], 0.0f) << "row " << row;
    EXPECT_EQ(m[row], 1.0f) << "row " << row;
  }
}

}  // namespace
}  // namespace dlm
