// stic/util/fs.h — files that are never half-written.
//
// AtomicFile writes PATH.tmp.<pid>, and commit() flushes, fsyncs and renames it over PATH, so a
// reader (or a resumed run) sees either the old file or the whole new one. Destroying an
// uncommitted AtomicFile removes the temp file: nothing partial is left behind on error.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

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

// The whole of `text` as PATH, atomically (an AtomicFile written and committed).
void write_file_atomic(const std::string& path, const std::string& text);
std::string read_text_file(const std::string& path);  // throws stic::Error naming the path
bool file_exists(const std::string& path);
// The entries of a list file (image lists): each line stripped; blank lines and lines starting
// with '#' skipped; with their 1-based line numbers. Throws stic::Error naming an unreadable path.
std::vector<std::pair<size_t, std::string>> read_list_file(const std::string& path);
bool dir_exists(const std::string& path);
// Removes a file or a folder tree (no-op when absent; symlinks are removed, not followed).
// Returns false if something could not be removed. POSIX nftw rather than
// std::filesystem::remove_all: a CUDA PyTorch's libtorch.so exports its own copy of
// remove_all, which the dynamic linker binds our calls to, and which crashes (a jump to
// address 0) on a non-empty folder — seen deleting old checkpoints on an H100.
bool remove_tree(const std::string& path);

}  // namespace stic
