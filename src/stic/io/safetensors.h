// stic/io/safetensors.h — reading and writing safetensors files and HF checkpoint folders.
//
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw data section.
// Files are memory-mapped; every header field is validated against the file size, so a
// truncated or corrupt file is an error naming the file and tensor, never a crash.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace stic {

struct SafetensorsEntry {
  std::string dtype;             // "F32", "BF16", "F16", "I64", ...
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;     // byte offsets within the data section
};

// One memory-mapped .safetensors file. Movable, not copyable; unmaps on destruction.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws stic::Error
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  // A CPU tensor holding a copy of the named tensor in its stored dtype.
  torch::Tensor get(const std::string& name) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_offset_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: model.safetensors, or shards listed in model.safetensors.index.json
// (or any single *.safetensors file when `path` names a file).
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& path);   // folder or file; throws stic::Error
  std::vector<std::string> keys() const;
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  torch::Tensor get(const std::string& name) const;
  std::string file_of(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

torch::ScalarType safetensors_dtype(const std::string& dtype, const std::string& context);
std::string safetensors_dtype_name(torch::ScalarType t);

// Writes tensors (any device/dtype; stored as given) atomically: PATH.tmp, fsync, rename.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace stic
