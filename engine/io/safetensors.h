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

#include "engine/core/buffer.h"
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

// The validated layout of a whole safetensors file held in memory.
struct SafetensorsLayout {
  size_t data_start = 0;             // offset of the data section from the start of the file
  std::vector<TensorEntry> entries;  // in data order
  std::map<std::string, std::string> metadata;
};

// Validates a safetensors file image of `size` bytes (every check SafetensorsFile makes); `source` names it
// in errors. Ranges may leave gaps in the data section, but never overlap.
SafetensorsLayout parse_safetensors(std::string_view source, const uint8_t* data, size_t size);

// The weight_map of a model.safetensors.index.json (tensor name -> shard file name, relative to the index's
// directory), validated: an object with a "weight_map" object of non-empty relative file names that stay
// inside the directory. `source` names the index in errors.
std::map<std::string, std::string> parse_safetensors_index(std::string_view source, std::string_view text);

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
  // Zero-copy host view into the mapping (read-only memory: do not write through it). A tensor whose bytes
  // are not aligned to its dtype size in the mapping (possible only in files from writers that do not pad)
  // is copied once, when the file is opened, into an owned aligned buffer, and the view points there.
  Tensor tensor(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile file_;
  size_t data_start_ = 0;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Buffer, std::less<>> aligned_copies_;
};

// All tensors of a checkpoint: a .safetensors file, or a directory with model.safetensors or with
// model.safetensors.index.json and its shards (missing shards and tensors mapped to absent shards are
// errors). A directory holding both is read through model.safetensors, as transformers does. A path ending in
// ".safetensors.index.json" is read as an index.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  const TensorEntry& entry(std::string_view name) const;
  Tensor tensor(std::string_view name) const;

 private:
  static Checkpoint open_index(const std::string& index_path);
  void add_shard(std::unique_ptr<SafetensorsFile> shard);  // every tensor name must be new

  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner_;
  std::string description_;  // for error messages
};

struct NamedTensor {
  std::string name;
  Tensor tensor;  // host, contiguous
};

// Writes a valid safetensors file (header padded to 8 bytes, tensors in the given order). The file appears
// atomically: it is written to a temporary file beside `path`, then renamed. Errors name the path.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dlm
