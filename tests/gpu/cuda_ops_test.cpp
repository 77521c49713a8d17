// The CUDA backend's data movement against the CPU backend: buffers and copies (column blocks, batches,
// overlap), cast between every dtype pair, and embedding for every table and id dtype, bit for bit, with
// guard bytes around every device tensor (op_checks.h). Without a device every test skips with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/cast.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/norm.h"
#include "engine/ops/softmax.h"
#include "engine/ops/vocab.h"
#include "tests/gpu/op_checks.h"

namespace dlm {
namespace {

using namespace op_test;

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

}  // namespace
}  // namespace dlm
