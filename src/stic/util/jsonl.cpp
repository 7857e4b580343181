#include "stic/util/jsonl.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace stic {

JsonlWriter::JsonlWriter(const std::string& path, std::set<std::string>* done_ids, const char* id_key) : path_(path) {
  namespace fs = std::filesystem;
  if (fs::exists(path)) check_regular_file(path, "output file");
  lock_ = std::make_unique<FileLock>(path);
  {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    size_t good_end = 0, offset = 0, lineno = 0;
    while (true) {
      if (!std::getline(in, line)) break;
      ++lineno;
      const bool complete = !in.eof();  // getline hit a newline
      const size_t next = offset + line.size() + (complete ? 1 : 0);
      bool ok = false;
      if (complete) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
          ok = true;
        } else {
          try {
            auto j = nlohmann::json::parse(line);
            ok = j.is_object();
            if (ok && done_ids && j.contains(id_key) && j[id_key].is_string()) done_ids->insert(j[id_key].get<std::string>());
            else if (ok && done_ids && j.contains(id_key)) done_ids->insert(j[id_key].dump());
          } catch (const std::exception&) {
            ok = false;
          }
        }
      }
      if (!ok) {
        if (complete && in.peek() != EOF)
          fail(path, ":", lineno, ": output file has a corrupt record "
               "before its last line (not written by stic?); move it away or fix it");
        break;  // a torn or corrupt tail: cut it
      }
      good_end = next;
      offset = next;
    }
    in.close();
    const auto size = fs::file_size(path);
    if (good_end < size) {
      repaired_ = static_cast<size_t>(size - good_end);
      fs::resize_file(path, good_end);
    }
  }
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail(path, ": cannot open for appending (", std::strerror(errno), ")");
}

JsonlWriter::~JsonlWriter() {
  if (f_) std::fclose(f_);
}

void JsonlWriter::write(const nlohmann::json& record) {
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    fail(path_, ": write failed (", std::strerror(errno), ")");
}

void read_jsonl(const std::string& path, const std::function<void(size_t, const nlohmann::json&)>& fn,
                const std::function<void(size_t, const std::string&)>& on_bad) {
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (", std::strerror(errno), ")");
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      std::string what = e.what();
      on_bad(n, str_cat(path, ":", n, ": not valid JSON (", what.substr(0, 120), ")"));
      continue;
    }
    if (!j.is_object()) {
      on_bad(n, str_cat(path, ":", n, ": expected a JSON object"));
      continue;
    }
    fn(n, j);
  }
}

void read_json_records(const std::string& path, const std::string& what,
                       const std::function<void(size_t, const std::string&, nlohmann::json&)>& fn,
                       const std::function<void(size_t, const std::string&, const std::string&)>& on_bad) {
  const std::string body = read_text_file(path);
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '[') {
    nlohmann::json all;
    try {
      all = nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": not valid JSON (expected ", what, "): ", e.what());
    }
    for (size_t i = 0; i < all.size(); ++i) fn(i, str_cat("element ", i), all[i]);
    return;
  }
  std::istringstream in(body);
  std::string line;
  size_t n = 0, index = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    bool ok = true;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      ok = false;
      on_bad(index, str_cat("line ", n), e.what());
    }
    if (ok) fn(index, str_cat("line ", n), j);
    ++index;
  }
}

}  // namespace stic
