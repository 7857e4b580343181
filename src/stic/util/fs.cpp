#include "stic/util/fs.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/strings.h"

namespace stic {

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(path, ": cannot create file (", std::strerror(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) fail(path_, ": write failed (", std::strerror(errno), ")");
}

void AtomicFile::commit() {
  if (!f_) fail(path_, ": commit called twice");
  if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) fail(path_, ": flush failed (", std::strerror(errno), ")");
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, ": rename from temp file failed (", std::strerror(errno), ")");
  }
}

void write_file_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::filesystem::is_regular_file(path); }
bool dir_exists(const std::string& path) { return std::filesystem::is_directory(path); }

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path) == 0 ? 0 : -1; }
}  // namespace

bool remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0;
  return ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

std::vector<std::pair<size_t, std::string>> read_list_file(const std::string& path) {
  std::vector<std::pair<size_t, std::string>> out;
  std::istringstream in(read_text_file(path));
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    const std::string s = strip(line);
    if (!s.empty() && s[0] != '#') out.emplace_back(n, s);
  }
  return out;
}

}  // namespace stic
