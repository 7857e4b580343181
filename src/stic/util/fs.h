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
// Throws stic::Error unless PATH is a regular file (or a link to one): "PATH: WHAT does not
// exist", "... is a directory, not a file", "... is not a regular file (a device, pipe or
// socket)". Every reader of an input file calls it first, so a folder or /dev/zero given as a
// file is refused before anything is read.
void check_regular_file(const std::string& path, const std::string& what = "file");
// What is wrong with PATH as an input file: "" (a regular file), "does not exist", "is a
// directory, not a file" or "is not a regular file (a device, pipe or socket)".
std::string regular_file_problem(const std::string& path);

// An exclusive advisory lock (flock) on PATH — a file (created if absent) or a folder (a
// training run's output folder) — for this object's lifetime: one writer per output. A second holder is refused at once with an error naming the file and
// the process that holds it (from /proc/locks).
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};
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
