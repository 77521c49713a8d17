#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "engine/core/error.h"
#include "engine/io/json_parse.h"
#include "engine/io/text_file.h"

namespace dlm {

namespace {
namespace fs = std::filesystem;

// The reference implementation's cap: a larger header is rejected before it is parsed.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kLengthBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::string_view kSupportedDTypes = "F32, BF16, F16, I32, I64, U8, I8, F8_E4M3";

uint64_t read_u64_le(const uint8_t* bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return value;
}

// A non-negative JSON integer; nullopt for anything else (negative, float, string, ...).
std::optional<uint64_t> as_unsigned(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return std::nullopt;
}

DType parse_dtype(std::string_view where, const nlohmann::json& value) {
  if (!value.is_string()) fail_input("{}: dtype must be a string, got {}", where, describe_json(value));
  const auto& name = value.get_ref<const std::string&>();
  auto dtype = dtype_from_safetensors(name);
  if (!dtype) fail_input("{}: unsupported dtype '{}' (supported: {})", where, name, kSupportedDTypes);
  return *dtype;
}

Shape parse_shape(std::string_view where, const nlohmann::json& value) {
  if (!value.is_array())
    fail_input("{}: shape must be an array of integers, got {}", where, describe_json(value));
  if (value.size() > static_cast<size_t>(kMaxRank)) {
    fail_input("{}: shape has {} dimensions, more than the supported {}", where, value.size(), kMaxRank);
  }
  Shape shape;
  // The product of the non-zero dimensions bounds every partial product that Shape and the stride
  // computations form, so keeping it within int64 keeps them free of overflow.
  uint64_t product = 1;
  for (size_t axis = 0; axis < value.size(); ++axis) {
    auto dim = as_unsigned(value[axis]);
    if (!dim) {
      fail_input("{}: shape dimension {} must be a non-negative integer, got {}", where, axis,
                 describe_json(value[axis]));
    }
    if (*dim != 0 &&
        (__builtin_mul_overflow(product, *dim, &product) || product > std::numeric_limits<int64_t>::max())) {
      fail_input("{}: shape {} has too many elements (overflows 64 bits)", where, value.dump());
    }
    shape.push_back(static_cast<int64_t>(*dim));
  }
  return shape;
}

TensorEntry parse_entry(std::string_view source, const std::string& name, const nlohmann::json& value,
                        size_t data_size) {
  std::string where = fmt::format("{}: tensor '{}'", source, name);
  if (!value.is_object()) {
    fail_input("{}: entry must be an object with dtype, shape and data_offsets, got {}", where,
               describe_json(value));
  }
  for (const auto& item : value.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets") {
      fail_input("{}: unexpected key '{}' (an entry has exactly dtype, shape and data_offsets)", where,
                 item.key());
    }
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    auto it = value.find(key);
    if (it == value.end()) fail_input("{}: missing key '{}'", where, key);
    return *it;
  };

  TensorEntry entry;
  entry.name = name;
  entry.dtype = parse_dtype(where, field("dtype"));
  entry.shape = parse_shape(where, field("shape"));

  const auto& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    fail_input(
        "{}: data_offsets must be [begin, end], got {}", where,
        offsets.is_array() ? fmt::format("an array of {} elements", offsets.size()) : describe_json(offsets));
  }
  std::optional<uint64_t> begin = as_unsigned(offsets[0]);
  std::optional<uint64_t> end = as_unsigned(offsets[1]);
  if (!begin || !end) {
    fail_input("{}: data_offsets {} must be a non-negative integer, got {}", where, begin ? "end" : "begin",
               describe_json(begin ? offsets[1] : offsets[0]));
  }
  if (*begin > *end) fail_input("{}: data_offsets [{}, {}] begin after they end", where, *begin, *end);
  if (*end > data_size) {
    fail_input("{}: data_offsets [{}, {}] run past the end of the data section ({} bytes)", where, *begin,
               *end, data_size);
  }
  entry.begin = static_cast<size_t>(*begin);
  entry.end = static_cast<size_t>(*end);

  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(entry.shape.numel()), dtype_size(entry.dtype), &bytes)) {
    fail_input("{}: dtype {} x shape {} overflows 64 bits of bytes", where,
               safetensors_dtype_name(entry.dtype), entry.shape.str());
  }
  if (bytes != entry.end - entry.begin) {
    fail_input("{}: dtype {} x shape {} needs {} bytes but data_offsets [{}, {}] hold {}", where,
               safetensors_dtype_name(entry.dtype), entry.shape.str(), bytes, entry.begin, entry.end,
               entry.end - entry.begin);
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(std::string_view source, const nlohmann::json& value) {
  if (!value.is_object()) {
    fail_input("{}: {} must be an object of strings, got {}", source, kMetadataKey, describe_json(value));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& item : value.items()) {
    if (!item.value().is_string()) {
      fail_input("{}: {} entry '{}' must be a string, got {}", source, kMetadataKey, item.key(),
                 describe_json(item.value()));
    }
    metadata.emplace(item.key(), item.value().get<std::string>());
  }
  return metadata;
}

// Shard names come from the index file: keep them to plain relative paths inside the checkpoint directory.
void check_shard_name(std::string_view source, const std::string& tensor, const std::string& shard) {
  auto bad = [&](std::string_view why) {
    fail_input("{}: weight_map: tensor '{}': shard file name '{}' {}", source, tensor, shard, why);
  };
  if (shard.empty()) bad("is empty");
  if (shard.find('\0') != std::string::npos) bad("contains a NUL character");
  fs::path path(shard);
  if (path.is_absolute()) bad("must be relative to the index's directory");
  for (const auto& part : path) {
    if (part == "..") bad("must stay inside the index's directory");
  }
}

// Writes through a temporary file beside the target, renamed over it at the end, so readers never see a
// partial file; the temporary file is removed if anything fails.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path) : path_(path) {
    static std::atomic<uint64_t> counter{0};
    temp_path_ = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) fail_input("{}: cannot create {}: {}", path_, temp_path_, std::strerror(errno));
  }
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size) {
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t written = ::write(fd_, bytes, size);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail_input("{}: cannot write: {}", path_, std::strerror(errno));
      }
      bytes += written;
      size -= static_cast<size_t>(written);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail_input("{}: cannot flush: {}", path_, std::strerror(errno));
    int result = ::close(fd_);
    fd_ = -1;
    if (result != 0) fail_input("{}: cannot close: {}", path_, std::strerror(errno));
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
      fail_input("{}: cannot rename {} to it: {}", path_, temp_path_, std::strerror(errno));
    }
    committed_ = true;
  }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};
}  // namespace

SafetensorsLayout parse_safetensors(std::string_view source, const uint8_t* data, size_t size) {
  if (size < kLengthBytes) {
    fail_input("{}: file is {} bytes, too short for the 8-byte header length", source, size);
  }
  uint64_t header_bytes = read_u64_le(data);
  if (header_bytes > kMaxHeaderBytes) {
    fail_input("{}: header length {} exceeds the limit of {} bytes", source, header_bytes, kMaxHeaderBytes);
  }
  if (header_bytes > size - kLengthBytes) {
    fail_input("{}: header length {} runs past the end of the file ({} bytes)", source, header_bytes, size);
  }

  SafetensorsLayout layout;
  layout.data_start = kLengthBytes + static_cast<size_t>(header_bytes);
  size_t data_size = size - layout.data_start;
  std::string_view text(reinterpret_cast<const char*>(data + kLengthBytes),
                        static_cast<size_t>(header_bytes));
  nlohmann::json header = parse_json(fmt::format("{}: header", source), text);
  if (!header.is_object())
    fail_input("{}: header must be a JSON object, got {}", source, describe_json(header));

  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      layout.metadata = parse_metadata(source, item.value());
    } else {
      layout.entries.push_back(parse_entry(source, item.key(), item.value(), data_size));
    }
  }

  std::sort(layout.entries.begin(), layout.entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // Gaps between ranges are harmless and accepted; shared bytes are not. Empty tensors own no bytes.
  const TensorEntry* previous = nullptr;
  for (const auto& entry : layout.entries) {
    if (entry.begin == entry.end) continue;
    if (previous != nullptr && entry.begin < previous->end) {
      fail_input("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", source, previous->name,
                 previous->begin, previous->end, entry.name, entry.begin, entry.end);
    }
    previous = &entry;
  }
  return layout;
}

std::map<std::string, std::string> parse_safetensors_index(std::string_view source, std::string_view text) {
  nlohmann::json root = parse_json(source, text);
  if (!root.is_object()) fail_input("{}: index must be a JSON object, got {}", source, describe_json(root));
  auto weight_map = root.find("weight_map");
  if (weight_map == root.end()) fail_input("{}: missing key 'weight_map'", source);
  if (!weight_map->is_object()) {
    fail_input("{}: weight_map must be an object (tensor name -> shard file), got {}", source,
               describe_json(*weight_map));
  }
  std::map<std::string, std::string> shards;
  for (const auto& item : weight_map->items()) {
    if (!item.value().is_string()) {
      fail_input("{}: weight_map: tensor '{}': shard must be a file name (string), got {}", source,
                 item.key(), describe_json(item.value()));
    }
    const auto& shard = item.value().get_ref<const std::string&>();
    check_shard_name(source, item.key(), shard);
    shards.emplace(item.key(), shard);
  }
  return shards;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  SafetensorsLayout layout = parse_safetensors(path, file_.data(), file_.size());
  data_start_ = layout.data_start;
  entries_ = std::move(layout.entries);
  metadata_ = std::move(layout.metadata);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const TensorEntry& entry = entries_[i];
    index_.emplace(entry.name, i);
    const uint8_t* bytes = file_.data() + data_start_ + entry.begin;
    if (reinterpret_cast<uintptr_t>(bytes) % dtype_size(entry.dtype) != 0) {
      Buffer copy = Buffer::host(entry.end - entry.begin);
      std::memcpy(copy.data(), bytes, entry.end - entry.begin);
      aligned_copies_.emplace(entry.name, std::move(copy));
    }
  }
}

bool SafetensorsFile::contains(std::string_view name) const {
  return index_.find(name) != index_.end();
}

const TensorEntry& SafetensorsFile::entry(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail_input("{}: no tensor named '{}'", path(), name);
  return entries_[it->second];
}

Tensor SafetensorsFile::tensor(std::string_view name) const {
  const TensorEntry& found = entry(name);
  auto copy = aligned_copies_.find(name);
  if (copy != aligned_copies_.end()) return copy->second.view(found.dtype, found.shape);
  // The mapping is read-only; Tensor holds a mutable pointer because it also describes writable memory.
  auto* bytes = const_cast<uint8_t*>(file_.data() + data_start_ + found.begin);
  return Tensor(bytes, found.dtype, found.shape);
}

Checkpoint Checkpoint::open(const std::string& path) {
  std::error_code error;
  fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail_input("{}: no such file or directory", path);
  if (fs::is_directory(status)) {
    fs::path single = fs::path(path) / "model.safetensors";
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(single, error)) return open(single.string());
    if (fs::exists(index, error)) return open_index(index.string());
    fail_input("{}: directory has neither model.safetensors nor model.safetensors.index.json", path);
  }
  if (path.ends_with(".safetensors.index.json")) return open_index(path);
  Checkpoint checkpoint;
  checkpoint.description_ = path;
  checkpoint.add_shard(std::make_unique<SafetensorsFile>(path));
  return checkpoint;
}

Checkpoint Checkpoint::open_index(const std::string& index_path) {
  std::map<std::string, std::string> weight_map =
      parse_safetensors_index(index_path, read_text_file(index_path));
  fs::path directory = fs::path(index_path).parent_path();
  Checkpoint checkpoint;
  checkpoint.description_ = index_path;

  std::map<std::string, const SafetensorsFile*> shard_files;  // shard name in the index -> its file
  for (const auto& [tensor, shard] : weight_map) {
    if (shard_files.contains(shard)) continue;
    std::string shard_path = (directory / shard).string();
    std::error_code error;
    if (!fs::is_regular_file(shard_path, error)) {
      fail_input("{}: shard '{}' of tensor '{}' is missing ({} is not a file)", index_path, shard, tensor,
                 shard_path);
    }
    std::unique_ptr<SafetensorsFile> file;
    try {
      file = std::make_unique<SafetensorsFile>(shard_path);
    } catch (const InputError& failure) {
      fail_input("{}: shard '{}': {}", index_path, shard, failure.what());
    }
    shard_files.emplace(shard, file.get());
    checkpoint.add_shard(std::move(file));
  }

  for (const auto& [tensor, shard] : weight_map) {
    auto owner = checkpoint.owner_.find(tensor);
    if (owner == checkpoint.owner_.end()) {
      fail_input("{}: tensor '{}' is mapped to shard '{}', which does not contain it", index_path, tensor,
                 shard);
    }
    if (owner->second != shard_files.at(shard)) {
      fail_input("{}: tensor '{}' is mapped to shard '{}' but stored in {}", index_path, tensor, shard,
                 owner->second->path());
    }
  }
  if (checkpoint.owner_.size() != weight_map.size()) {
    for (const auto& [tensor, file] : checkpoint.owner_) {
      if (!weight_map.contains(tensor)) {
        fail_input("{}: tensor '{}' in shard {} is not listed in the weight_map", index_path, tensor,
                   file->path());
      }
    }
  }
  return checkpoint;
}

void Checkpoint::add_shard(std::unique_ptr<SafetensorsFile> shard) {
  for (const auto& entry : shard->entries()) {
    auto [it, inserted] = owner_.emplace(entry.name, shard.get());
    if (!inserted) {
      fail_input("{}: tensor '{}' is in two shards: {} and {}", description_, entry.name, it->second->path(),
                 shard->path());
    }
  }
  shards_.push_back(std::move(shard));
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const auto& [name, file] : owner_) names.push_back(name);
  return names;
}

bool Checkpoint::contains(std::string_view name) const {
  return owner_.find(name) != owner_.end();
}

const TensorEntry& Checkpoint::entry(std::string_view name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) fail_input("{}: no tensor named '{}'", description_, name);
  return it->second->entry(name);
}

Tensor Checkpoint::tensor(std::string_view name) const {
  entry(name);  // names the checkpoint if absent
  return owner_.find(name)->second->tensor(name);
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Ordered so that the file lists __metadata__ first and the tensors in the order given.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::set<std::string_view> names;
  size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) fail_input("{}: '{}' cannot name a tensor", path, name);
    if (!names.insert(name).second) fail_input("{}: tensor '{}' given twice", path, name);
    if (tensor.device().kind != DeviceKind::Cpu || !tensor.is_contiguous()) {
      fail("{}: tensor '{}' is {}; only contiguous host tensors can be written", path, name,
           tensor.describe());
    }
    size_t bytes = tensor.nbytes();
    header[name] = {{"dtype", std::string(safetensors_dtype_name(tensor.dtype()))},
                    {"shape", std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& error) {  // a name or metadata string that is not UTF-8
    fail_input("{}: cannot write header: {}", path, error.what());
  }
  text.append((kLengthBytes - text.size() % kLengthBytes) % kLengthBytes, ' ');

  uint8_t length[kLengthBytes];
  for (size_t i = 0; i < kLengthBytes; ++i) length[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  AtomicFileWriter writer(path);
  writer.write(length, sizeof length);
  writer.write(text.data(), text.size());
  for (const auto& named : tensors) {
    if (named.tensor.nbytes() > 0) writer.write(named.tensor.data(), named.tensor.nbytes());
  }
  writer.commit();
}

}  // namespace dlm
