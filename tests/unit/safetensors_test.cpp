#include "engine/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/core/buffer.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("dlm_safetensors_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `bytes` verbatim and returns the path.
  std::string write_raw(const std::string& name, const std::string& bytes) const {
    std::string file = path(name);
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return file;
  }

  // A safetensors file assembled by hand: 8-byte little-endian length, the header text as given, data bytes.
  std::string write_file(const std::string& name, const std::string& header, const std::string& data,
                         uint64_t declared_length) const {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((declared_length >> (8 * i)) & 0xff));
    return write_raw(name, bytes + header + data);
  }
  std::string write_file(const std::string& name, const std::string& header, const std::string& data) const {
    return write_file(name, header, data, header.size());
  }

  fs::path dir_;
};

std::string read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string float_bytes(std::initializer_list<float> values) {
  std::string bytes;
  for (float value : values) bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
  return bytes;
}

HostTensor patterned(DType dtype, Shape shape, int salt) {
  HostTensor tensor(dtype, shape);
  auto* bytes = static_cast<uint8_t*>(tensor.tensor().data());
  for (size_t i = 0; i < tensor.tensor().nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + salt);
  return tensor;
}

std::string tensor_bytes(const Tensor& tensor) {
  return std::string(static_cast<const char*>(tensor.data()), tensor.nbytes());
}

TEST_F(SafetensorsTest, WriterProducesTheReferenceLayout) {
  HostTensor x = HostTensor::from<float>({2}, {1.0f, 2.0f});
  std::string file = path("x.safetensors");
  write_safetensors(file, {{"x", x}});
  // Hand-computed: the compact JSON header, padded with spaces to a multiple of 8 bytes.
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  header.append(2, ' ');
  std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + header + float_bytes({1.0f, 2.0f});
  EXPECT_EQ(read_bytes(file), expected);
}

TEST_F(SafetensorsTest, RoundTripsEveryDTypeAndMetadata) {
  const DType dtypes[] = {DType::F32, DType::BF16, DType::F16, DType::I32,
                          DType::I64, DType::U8,   DType::I8,  DType::F8E4M3};
  std::vector<HostTensor> owners;
  std::vector<NamedTensor> tensors;
  int salt = 0;
  for (DType dtype : dtypes) {
    owners.push_back(patterned(dtype, {3, 5}, ++salt));
    tensors.push_back({fmt::format("t.{}", dtype_name(dtype)), owners.back()});
  }
  owners.push_back(patterned(DType::F32, {}, 99));  // a scalar
  tensors.push_back({"scalar", owners.back()});
  owners.push_back(HostTensor(DType::BF16, {0, 4}));  // no elements
  tensors.push_back({"empty", owners.back()});
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "ünïcode"}};
  std::string file = path("all.safetensors");
  write_safetensors(file, tensors, metadata);

  uint64_t header_length = 0;
  std::memcpy(&header_length, read_bytes(file).data(), 8);
  EXPECT_EQ(header_length % 8, 0u) << "header padding keeps the data section 8-aligned";
  SafetensorsFile read(file);
  EXPECT_EQ(read.metadata(), metadata);
  ASSERT_EQ(read.entries().size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(read.contains(name));
    Tensor loaded = read.tensor(name);
    EXPECT_EQ(loaded.dtype(), tensor.dtype());
    EXPECT_EQ(loaded.shape(), tensor.shape());
    EXPECT_EQ(tensor_bytes(loaded), tensor_bytes(tensor));
  }
  // Written in the order given, so the data order matches.
  EXPECT_EQ(read.entries().front().name, "t.f32");
  EXPECT_EQ(read.entries().front().begin, 0u);
}

TEST_F(SafetensorsTest, AlignedTensorsAreViewsIntoTheMapping) {
  HostTensor a = patterned(DType::F32, {16}, 1);
  HostTensor b = patterned(DType::I64, {4}, 2);
  std::string file = path("views.safetensors");
  write_safetensors(file, {{"a", a}, {"b", b}});
  SafetensorsFile read(file);
  // The mapping starts on a page boundary, so a zero-copy view sits at its file offset modulo the page size.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t data_start = read_bytes(file).size() - 64 - 32;
  for (const char* name : {"a", "b"}) {
    size_t offset = data_start + read.entry(name).begin;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read.tensor(name).data()) % page, offset % page) << name;
  }
}

TEST_F(SafetensorsTest, MisalignedTensorsAreCopiedToAlignedMemory) {
  // A 2-byte U8 tensor first puts the F32 tensor at data offset 2, misaligned for 4-byte floats.
  std::string header = R"({"u":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                       R"("f":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file =
      write_file("misaligned.safetensors", header, std::string("\x07\x09", 2) + float_bytes({1.5f, -2.0f}));
  SafetensorsFile read(file);
  Tensor f = read.tensor("f");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data()) % alignof(float), 0u);
  EXPECT_EQ(f.data_as<float>()[0], 1.5f);
  EXPECT_EQ(f.data_as<float>()[1], -2.0f);
  EXPECT_EQ(read.tensor("u").data_as<uint8_t>()[1], 9);
}

TEST_F(SafetensorsTest, GapsBetweenTensorsAndEmptyTensorsAreAccepted) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  std::string file = write_file("gaps.safetensors", header, float_bytes({1.0f, 0.0f, 3.0f}));
  SafetensorsFile read(file);
  EXPECT_EQ(read.tensor("b").data_as<float>()[0], 3.0f);
  EXPECT_EQ(read.entry("z").shape, Shape({0, 3}));
  ASSERT_EQ(read.entries().size(), 3u);
  EXPECT_EQ(read.entries()[0].name, "a");  // data order, not name order
  EXPECT_EQ(read.entries()[2].name, "b");
}

TEST_F(SafetensorsTest, MissingTensorIsNamed) {
  std::string file = path("one.safetensors");
  HostTensor x = HostTensor::from<float>({1}, {1.0f});
  write_safetensors(file, {{"x", x}});
  SafetensorsFile read(file);
  EXPECT_FALSE(read.contains("y"));
  EXPECT_THAT(input_error_of([&] { read.tensor("y"); }),
              AllOf(HasSubstr(file), HasSubstr("no tensor named 'y'")));
}

// Each malformed file: the error names the file and the fault.
struct Malformed {
  const char* name;
  std::string header;
  std::string data;
  std::string fault;
};

TEST_F(SafetensorsTest, MalformedHeadersAreRejectedWithTheirFault) {
  const std::string f32x2 = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  const std::vector<Malformed> cases = {
      {"bad_json", R"({"a":{"dtype":)", "", "invalid JSON"},
      {"not_object", "[1, 2]", "", "header must be a JSON object, got array"},
      {"entry_not_object", R"({"a": 5})", "", "tensor 'a': entry must be an object"},
      {"unknown_dtype_bool", R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "x",
       "tensor 'a': unsupported dtype 'BOOL'"},
      {"unknown_dtype_f64", R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", std::string(8, 'x'),
       "unsupported dtype 'F64'"},
      {"dtype_not_string", R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "xxxx",
       "dtype must be a string, got integer 4"},
      {"size_mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx",
       "tensor 'a': dtype F32 x shape [2] needs 8 bytes but data_offsets [0, 4] hold 4"},
      {"out_of_file", R"({"a":{)" + f32x2 + "}}", "xxxx", "tensor 'a': data_offsets [0, 8] run past the end"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       std::string(12, 'x'), "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
      {"negative_dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "",
       "tensor 'a': shape dimension 0 must be a non-negative integer, got integer -1"},
      {"float_dim", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})", "",
       "shape dimension 0 must be a non-negative integer, got float 2.5"},
      {"string_dim", R"({"a":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,0]}})", "",
       "shape dimension 1 must be a non-negative integer, got string \"2\""},
      {"shape_not_array", R"({"a":{"dtype":"F32","shape":3,"data_offsets":[0,12]}})", std::string(12, 'x'),
       "shape must be an array of integers"},
      {"numel_overflow", R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "",
       "tensor 'a': shape [4294967296,4294967296] has too many elements"},
      {"bytes_overflow", R"({"a":{"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,0]}})", "",
       "tensor 'a': dtype I64 x shape [4611686018427387904] overflows 64 bits"},
      {"rank_too_high", R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1],"data_offsets":[0,1]}})", "x",
       "shape has 7 dimensions, more than the supported 6"},
      {"missing_key", R"({"a":{"dtype":"F32","shape":[2]}})", "", "tensor 'a': missing key 'data_offsets'"},
      {"extra_key", R"({"a":{)" + f32x2 + R"(,"align":8}})", std::string(8, 'x'), "unexpected key 'align'"},
      {"offsets_reversed", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "xxxx",
       "data_offsets [4, 0] begin after they end"},
      {"offsets_arity", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", "xx",
       "data_offsets must be [begin, end], got an array of 3 elements"},
      {"offsets_negative", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "x",
       "data_offsets begin must be a non-negative integer, got integer -1"},
      {"metadata_not_strings", R"({"__metadata__":{"epoch":3}})", "",
       "__metadata__ entry 'epoch' must be a string, got integer 3"},
      {"metadata_not_object", R"({"__metadata__":"x"})", "", "__metadata__ must be an object of strings"},
      {"duplicate_name",
       R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
       "xy", "duplicate key 'a'"},
      {"huge_number", R"({"a":{"dtype":"U8","shape":[1e999],"data_offsets":[0,1]}})", "x", "invalid JSON"},
      {"trailing_garbage", R"({} x)", "", "invalid JSON"},
      {"too_deep", std::string(100, '[') + std::string(100, ']'), "", "nested deeper than 64 levels"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.name);
    std::string file = write_file(std::string(bad.name) + ".safetensors", bad.header, bad.data);
    EXPECT_THAT(input_error_of([&] { SafetensorsFile read(file); }),
                AllOf(HasSubstr(file), HasSubstr(bad.fault)));
  }
}

TEST_F(SafetensorsTest, MalformedLengthPrefixesAreRejected) {
  std::string truncated = write_raw("truncated.safetensors", std::string("\x05\0\0", 3));
  EXPECT_THAT(input_error_of([&] { SafetensorsFile read(truncated); }),
              AllOf(HasSubstr(truncated), HasSubstr("file is 3 bytes, too short")));

  std::string oversized = write_file("oversized.safetensors", "{}", "", 100'000'001);
  EXPECT_THAT(
      input_error_of([&] { SafetensorsFile read(oversized); }),
      AllOf(HasSubstr(oversized), HasSubstr("header length 100000001 exceeds the limit of 100000000")));

  std::string huge = write_file("huge.safetensors", "{}", "", ~uint64_t{0});
  EXPECT_THAT(input_error_of([&] { SafetensorsFile read(huge); }), HasSubstr("exceeds the limit"));

  std::string past_end = write_file("past_end.safetensors", "{}  ", "", 100);
  EXPECT_THAT(
      input_error_of([&] { SafetensorsFile read(past_end); }),
      AllOf(HasSubstr(past_end), HasSubstr("header length 100 runs past the end of the file (12 bytes)")));

  EXPECT_THAT(input_error_of([&] { SafetensorsFile read(path("absent.safetensors")); }),
              AllOf(HasSubstr("absent.safetensors"), HasSubstr("cannot open")));
}

TEST_F(SafetensorsTest, ParsesFromMemoryLikeTheFile) {
  std::string header = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  std::string bytes =
      std::string(1, static_cast<char>(header.size())) + std::string(7, '\0') + header + std::string(8, '\0');
  SafetensorsLayout layout =
      parse_safetensors("memory", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_EQ(layout.data_start, 8 + header.size());
  ASSERT_EQ(layout.entries.size(), 1u);
  EXPECT_EQ(layout.entries[0].dtype, DType::I32);
  EXPECT_EQ(layout.entries[0].end, 8u);
  EXPECT_THAT(input_error_of(
                  [&] { parse_safetensors("memory", reinterpret_cast<const uint8_t*>(bytes.data()), 20); }),
              AllOf(HasSubstr("memory:"), HasSubstr("runs past the end")));
}

TEST_F(SafetensorsTest, WriterErrorsNameThePath) {
  HostTensor x = HostTensor::from<float>({1}, {1.0f});
  std::string twice = path("twice.safetensors");
  EXPECT_THAT(input_error_of([&] {
                write_safetensors(twice, {{"x", x}, {"x", x}});
              }),
              AllOf(HasSubstr(twice), HasSubstr("tensor 'x' given twice")));
  std::string nowhere = path("missing_dir/x.safetensors");
  EXPECT_THAT(input_error_of([&] {
                write_safetensors(nowhere, {{"x", x}});
              }),
              AllOf(HasSubstr(nowhere), HasSubstr("cannot create")));
  std::string reserved = path("reserved.safetensors");
  EXPECT_THAT(input_error_of([&] {
                write_safetensors(reserved, {{"__metadata__", x}});
              }),
              HasSubstr("'__metadata__' cannot name a tensor"));
  // Nothing is left behind: no partial target, no temporary file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

TEST_F(SafetensorsTest, WriterReplacesAnExistingFileWhole) {
  std::string file = path("model.safetensors");
  HostTensor first = patterned(DType::F32, {64}, 1);
  HostTensor second = HostTensor::from<int32_t>({1}, {42});
  write_safetensors(file, {{"w", first}});
  write_safetensors(file, {{"v", second}});
  SafetensorsFile read(file);
  EXPECT_FALSE(read.contains("w"));
  EXPECT_EQ(read.tensor("v").data_as<int32_t>()[0], 42);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// --- Checkpoints: single files and shards ---

class CheckpointTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    a_ = HostTensor::from<float>({2}, {1.0f, 2.0f});
    b_ = HostTensor::from<int32_t>({3}, {4, 5, 6});
    c_ = HostTensor::from<float>({1}, {7.0f});
  }
  void write_shards() {
    write_safetensors(path("model-00001-of-00002.safetensors"), {{"a", a_}, {"b", b_}});
    write_safetensors(path("model-00002-of-00002.safetensors"), {{"c", c_}});
  }
  std::string write_index(const std::string& weight_map) {
    return write_raw("model.safetensors.index.json",
                     R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map + "}");
  }
  static constexpr const char* kGoodMap =
      R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
          "c": "model-00002-of-00002.safetensors"})";

  HostTensor a_, b_, c_;
};

TEST_F(CheckpointTest, OpensASingleFileOrADirectoryHoldingIt) {
  write_safetensors(path("model.safetensors"), {{"a", a_}, {"b", b_}});
  for (const std::string& where : {path("model.safetensors"), dir_.string()}) {
    SCOPED_TRACE(where);
    Checkpoint checkpoint = Checkpoint::open(where);
    EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(checkpoint.tensor("b").data_as<int32_t>()[2], 6);
    EXPECT_FALSE(checkpoint.contains("c"));
    EXPECT_THAT(input_error_of([&] { checkpoint.entry("c"); }),
                AllOf(HasSubstr("model.safetensors"), HasSubstr("no tensor named 'c'")));
  }
}

TEST_F(CheckpointTest, OpensShardsThroughTheIndex) {
  write_shards();
  std::string index = write_index(kGoodMap);
  for (const std::string& where : {dir_.string(), index}) {
    SCOPED_TRACE(where);
    Checkpoint checkpoint = Checkpoint::open(where);
    EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(checkpoint.tensor("a").data_as<float>()[1], 2.0f);
    EXPECT_EQ(checkpoint.tensor("c").data_as<float>()[0], 7.0f);
    EXPECT_EQ(checkpoint.entry("b").shape, Shape({3}));
    EXPECT_THAT(input_error_of([&] { checkpoint.tensor("d"); }),
                AllOf(HasSubstr(index), HasSubstr("no tensor named 'd'")));
  }
}

TEST_F(CheckpointTest, MissingShardNamesIndexShardAndTensor) {
  write_safetensors(path("model-00001-of-00002.safetensors"), {{"a", a_}, {"b", b_}});
  std::string index = write_index(kGoodMap);
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(dir_.string()); }),
              AllOf(HasSubstr(index),
                    HasSubstr("shard 'model-00002-of-00002.safetensors' of tensor 'c' is missing")));
}

TEST_F(CheckpointTest, TensorMissingFromItsShard) {
  write_shards();
  std::string index = write_index(
      R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
          "c": "model-00002-of-00002.safetensors", "d": "model-00002-of-00002.safetensors"})");
  EXPECT_THAT(
      input_error_of([&] { Checkpoint::open(index); }),
      AllOf(HasSubstr(index), HasSubstr("tensor 'd' is mapped to shard 'model-00002-of-00002.safetensors', "
                                        "which does not contain it")));
}

TEST_F(CheckpointTest, TensorMappedToTheWrongShard) {
  write_shards();
  std::string index = write_index(
      R"({"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
          "c": "model-00002-of-00002.safetensors"})");
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(index); }),
              AllOf(HasSubstr(index),
                    HasSubstr("tensor 'b' is mapped to shard 'model-00002-of-00002.safetensors' "
                              "but stored in"),
                    HasSubstr("model-00001-of-00002.safetensors")));
}

TEST_F(CheckpointTest, TensorInTwoShards) {
  write_safetensors(path("model-00001-of-00002.safetensors"), {{"a", a_}, {"b", b_}});
  write_safetensors(path("model-00002-of-00002.safetensors"), {{"b", b_}, {"c", c_}});
  std::string index = write_index(kGoodMap);
  EXPECT_THAT(
      input_error_of([&] { Checkpoint::open(index); }),
      AllOf(HasSubstr(index), HasSubstr("tensor 'b' is in two shards"),
            HasSubstr("model-00001-of-00002.safetensors"), HasSubstr("model-00002-of-00002.safetensors")));
}

TEST_F(CheckpointTest, DuplicateTensorInTheIndex) {
  write_shards();
  std::string index =
      write_index(R"({"a": "model-00001-of-00002.safetensors", "a": "model-00002-of-00002.safetensors"})");
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(index); }),
              AllOf(HasSubstr(index), HasSubstr("duplicate key 'a'")));
}

TEST_F(CheckpointTest, TensorMissingFromTheWeightMap) {
  write_shards();
  std::string index =
      write_index(R"({"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"})");
  EXPECT_THAT(
      input_error_of([&] { Checkpoint::open(index); }),
      AllOf(HasSubstr(index), HasSubstr("tensor 'b' in shard"), HasSubstr("not listed in the weight_map")));
}

TEST_F(CheckpointTest, MalformedShardNamesTheIndexAndTheShard) {
  write_shards();
  write_raw("model-00002-of-00002.safetensors", "garbage!");
  std::string index = write_index(kGoodMap);
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(index); }),
              AllOf(HasSubstr(index), HasSubstr("shard 'model-00002-of-00002.safetensors'"),
                    HasSubstr("exceeds the limit")));
}

TEST_F(CheckpointTest, MalformedIndexes) {
  write_shards();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "invalid JSON"},
      {"[]", "index must be a JSON object"},
      {R"({"metadata": {}})", "missing key 'weight_map'"},
      {R"({"weight_map": []})", "weight_map must be an object"},
      {R"({"weight_map": {"a": 1}})", "tensor 'a': shard must be a file name (string), got integer 1"},
      {R"({"weight_map": {"a": ""}})", "shard file name '' is empty"},
      {R"({"weight_map": {"a": "/etc/passwd"}})", "must be relative"},
      {R"({"weight_map": {"a": "../model.safetensors"}})", "must stay inside"},
  };
  for (const auto& [text, fault] : cases) {
    SCOPED_TRACE(text);
    std::string index = write_raw("model.safetensors.index.json", text);
    EXPECT_THAT(input_error_of([&] { Checkpoint::open(dir_.string()); }),
                AllOf(HasSubstr(index), HasSubstr(fault)));
  }
}

TEST_F(CheckpointTest, DirectoryWithoutCheckpoint) {
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(dir_.string()); }),
              AllOf(HasSubstr(dir_.string()),
                    HasSubstr("neither model.safetensors nor model.safetensors.index.json")));
  EXPECT_THAT(input_error_of([&] { Checkpoint::open(path("nothing")); }),
              HasSubstr("no such file or directory"));
}

}  // namespace
}  // namespace dlm
