#include "stic/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace stic {

torch::ScalarType safetensors_dtype(const std::string& d, const std::string& context) {
  if (d == "F32") return torch::kFloat32;
  if (d == "BF16") return torch::kBFloat16;
  if (d == "F16") return torch::kFloat16;
  if (d == "F64") return torch::kFloat64;
  if (d == "I64") return torch::kInt64;
  if (d == "I32") return torch::kInt32;
  if (d == "I16") return torch::kInt16;
  if (d == "I8") return torch::kInt8;
  if (d == "U8") return torch::kUInt8;
  if (d == "BOOL") return torch::kBool;
  fail(context, ": unsupported dtype '", d, "' (expected F32, BF16, F16, F64, I64, I32, I16, I8, U8 or BOOL)");
}

std::string safetensors_dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "F32";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat16: return "F16";
    case torch::kFloat64: return "F64";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: fail("safetensors: cannot store dtype ", c10::toString(t));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, ": cannot open safetensors file (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat (", std::strerror(errno), ")");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    fail(path, ": not a safetensors file (", map_size_, " bytes; expected an 8-byte header length then a JSON header)");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, ": mmap failed (", std::strerror(errno), ")");
  }
  const auto* bytes = static_cast<const uint8_t*>(map_);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n == 0 || n > map_size_ - 8) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    fail(path, ": bad safetensors header length ", n, " (file has ", map_size_,
         " bytes; the file is truncated or not safetensors)");
  }
  data_offset_ = 8 + n;
  const size_t data_size = map_size_ - data_offset_;
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + n));
  } catch (const std::exception& e) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    fail(path, ": safetensors header is not valid JSON (", e.what(), ")");
  }
  auto bad = [&](const std::string& why) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    fail(path, ": ", why);
  };
  if (!header.is_object()) bad("safetensors header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_object())
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const auto& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      bad("tensor '" + it.key() + "': header entry needs dtype, shape and data_offsets");
    SafetensorsEntry entry;
    try {
      entry.dtype = e["dtype"].get<std::string>();
      entry.shape = e["shape"].get<std::vector<int64_t>>();
      auto off = e["data_offsets"].get<std::vector<uint64_t>>();
      if (off.size() != 2) bad("tensor '" + it.key() + "': data_offsets must have two entries");
      entry.begin = off[0];
      entry.end = off[1];
    } catch (const stic::Error&) {
      throw;
    } catch (const std::exception& ex) {
      bad("tensor '" + it.key() + "': malformed header entry (" + ex.what() + ")");
    }
    auto st_type = safetensors_dtype(entry.dtype, path + ": tensor '" + it.key() + "'");
    uint64_t numel = 1;  // overflow-checked: a header's shape product must fit the file it is in
    for (auto d : entry.shape) {
      if (d < 0) bad("tensor '" + it.key() + "': negative dimension");
      if (d > 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d) / 16)
        bad(str_cat("tensor '", it.key(), "': shape ", e["shape"].dump(), " has more elements than any file can hold"));
      numel *= static_cast<uint64_t>(d);
    }
    const size_t want = static_cast<size_t>(numel) * c10::elementSize(st_type);
    if (entry.end < entry.begin || entry.end - entry.begin != want)
      bad(str_cat("tensor '", it.key(), "': data_offsets [", entry.begin, ", ", entry.end, ") hold ",
                  entry.end - entry.begin, " bytes but dtype ", entry.dtype, " and shape need ", want));
    if (entry.end > data_size)
      bad(str_cat("file is truncated: tensor '", it.key(), "' needs bytes [", entry.begin, ", ", entry.end,
                  ") of the data section, which has only ", data_size, " bytes"));
    entries_[it.key()] = std::move(entry);
  }
  // the tensors' byte ranges tile the data section: no overlap (two tensors sharing bytes), no gap
  std::vector<std::pair<uint64_t, std::string>> starts;
  for (auto& [name, e] : entries_)
    if (e.end > e.begin) starts.emplace_back(e.begin, name);
  std::sort(starts.begin(), starts.end());
  uint64_t at = 0;
  for (auto& [b, name] : starts) {
    const auto& e = entries_.at(name);
    if (b < at) bad(str_cat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, ") overlap the tensor before it (ends at ", at, ")"));
    if (b > at) bad(str_cat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, ") leave bytes [", at, ", ", b, ") unused"));
    at = e.end;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, ": no tensor named '", name, "'");
  const auto& e = it->second;
  auto t = safetensors_dtype(e.dtype, path_);
  auto out = torch::empty(e.shape, torch::TensorOptions().dtype(t));
  std::memcpy(out.data_ptr(), static_cast<const uint8_t*>(map_) + data_offset_ + e.begin, e.end - e.begin);
  return out;
}

Checkpoint::Checkpoint(const std::string& path) : path_(path) {
  std::vector<std::string> files;
  if (fs::is_regular_file(path)) {
    files.push_back(path);
  } else if (fs::is_directory(path)) {
    const auto index = fs::path(path) / "model.safetensors.index.json";
    const auto single = fs::path(path) / "model.safetensors";
    if (fs::exists(index)) {
      json j;
      try {
        std::ifstream in(index);
        j = json::parse(in);
      } catch (const std::exception& e) {
        fail(index.string(), ": not valid JSON (", e.what(), ")");
      }
      if (!j.contains("weight_map") || !j["weight_map"].is_object())
        fail(index.string(), ": missing \"weight_map\" object");
      std::map<std::string, bool> seen;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it->is_string()) fail(index.string(), ": weight_map['", it.key(), "'] must be a shard file name (a string)");
        auto f = it->get<std::string>();
        // a shard is a file of this folder: no path, no "..", nothing outside it
        if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
          fail(index.string(), ": weight_map['", it.key(), "'] names '", f.substr(0, 100), "', not a file name in this folder");
        if (!seen[f]) {
          seen[f] = true;
          auto full = (fs::path(path) / f).string();
          if (!fs::exists(full)) fail(index.string(), ": shard '", f, "' (holding '", it.key(), "') does not exist");
          check_regular_file(full, "shard");
          files.push_back(full);
        }
      }
    } else if (fs::exists(single)) {
      files.push_back(single.string());
    } else {
      for (auto& p : fs::directory_iterator(path))
        if (p.path().extension() == ".safetensors") files.push_back(p.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty())
        fail(path, ": no model.safetensors, model.safetensors.index.json or *.safetensors found");
    }
  } else {
    fail(path, ": checkpoint path does not exist");
  }
  for (auto& f : files) {
    files_.push_back(std::make_unique<SafetensorsFile>(f));
    for (auto& kv : files_.back()->entries()) {
      if (where_.count(kv.first))
        fail(f, ": tensor '", kv.first, "' also appears in ", files_[where_[kv.first]]->path());
      where_[kv.first] = files_.size() - 1;
    }
  }
}

std::vector<std::string> Checkpoint::keys() const {
  std::vector<std::string> k;
  for (auto& kv : where_) k.push_back(kv.first);
  return k;
}

torch::Tensor Checkpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(path_, ": checkpoint has no tensor '", name, "'");
  return files_[it->second]->get(name);
}

std::string Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? std::string() : files_[it->second]->path();
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  size_t offset = 0;
  for (auto& kv : tensors) {
    auto t = kv.second.detach().to(torch::kCPU).contiguous();
    const size_t nbytes = t.numel() * t.element_size();
    header[kv.first] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                        {"shape", t.sizes().vec()},
                        {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(t);
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // align the data section
  AtomicFile out(path);
  uint64_t n = h.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  out.write(len, 8);
  out.write(h.data(), h.size());
  for (auto& t : cpu) out.write(t.data_ptr(), t.numel() * t.element_size());
  out.commit();
}

}  // namespace stic
