#pragma once
// Safetensors checkpoints: a validated, memory-mapped reader (single file or sharded through
// model.safetensors.index.json) and a writer for tests and tools.
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, optional
// "__metadata__": {str: str}}, then the raw little-endian tensor bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/io/mapped_file.h"

namespace dlm {

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t begin = 0;  // byte range inside the data section
  size_t end = 0;
};

// One .safetensors file. The constructor validates everything (header length cap, well-formed JSON, known
// dtypes, dtype x shape == byte range, ranges inside the file and not overlapping) and throws InputError
// naming the file and the fault.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<TensorEntry>& entries() const { return entries_; }  // in data order
  bool contains(std::string_view name) const;
  const TensorEntry& entry(std::string_view name) const;  // InputError naming the file and tensor if absent
  // Zero-copy host view into the mapping (read-only memory: do not write through it).
  Tensor tensor(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile file_;
  size_t data_start_ = 0;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint: a .safetensors file, or a directory with model.safetensors or with
// model.safetensors.index.json and its shards (missing shards and tensors mapped to absent shards are errors).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  const TensorEntry& entry(std::string_view name) const;
  Tensor tensor(std::string_view name) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner_;
  std::string description_;  // for error messages
};

struct NamedTensor {
  std::string name;
  Tensor tensor;  // host, contiguous
};

// Writes a valid safetensors file (header padded to 8 bytes, tensors in the given order).
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dlm
