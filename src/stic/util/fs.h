// stic/util/fs.h — files that are never half-written.
//
// AtomicFile writes PATH.tmp.<pid>, and commit() flushes, fsyncs and renames it over PATH, so a
// reader (or a resumed run) sees either the old file or the whole new one. Destroying an
// uncommitted AtomicFile removes the temp file: nothing partial is left behind on error.
#pragma once

#include <cstdio>
#include <string>

namespace stic {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // throws stic::Error if the temp file can't be created
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();  // flush + fsync + rename; throws stic::Error

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

std::string read_text_file(const std::string& path);  // throws stic::Error naming the path
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);

}  // namespace stic
