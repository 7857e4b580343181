#include "stic/util/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::filesystem::is_regular_file(path); }

std::string regular_file_problem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno == ENOENT ? "does not exist" : str_cat("cannot be read (", std::strerror(errno), ")");
  if (S_ISDIR(st.st_mode)) return "is a directory, not a file";
  if (!S_ISREG(st.st_mode)) return "is not a regular file (a device, pipe or socket)";
  return "";
}

void check_regular_file(const std::string& path, const std::string& what) {
  const std::string why = regular_file_problem(path);
  if (!why.empty()) fail(path, ": ", what, " ", why);
}

namespace {
// The pid holding a flock on the file with inode `ino` on device (maj, min), from /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF"); 0 when not found.
long lock_holder(const struct stat& st) {
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string n, kind, adv, rw, dev;
    long pid = 0;
    if (!(ls >> n >> kind)) continue;
    if (kind == "->") ls >> kind;  // a waiter
    if (!(ls >> adv >> rw >> pid >> dev)) continue;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (std::sscanf(dev.c_str(), "%x:%x:%llu", &maj, &min, &ino) == 3 && ino == static_cast<unsigned long long>(st.st_ino) &&
        maj == major(st.st_dev) && min == minor(st.st_dev))
      return pid;
  }
  return 0;
}
}  // namespace

FileLock::FileLock(const std::string& path) {
  fd_ = dir_exists(path) ? ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)  // a folder: its run
                         : ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, ": cannot open (", std::strerror(errno), ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    struct stat st;
    const long pid = ::fstat(fd_, &st) == 0 ? lock_holder(st) : 0;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      fail(path, ": another process", pid > 0 ? str_cat(" (pid ", pid, ")") : std::string(),
           " is writing this file; wait for it to finish or choose another output");
    fail(path, ": cannot lock (", std::strerror(err), ")");
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}
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
