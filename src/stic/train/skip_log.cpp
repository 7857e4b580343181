// stic/train/skip_log.cpp — see skip_log.h.
#include "stic/train/skip_log.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "stic/util/fs.h"

namespace stic {

SkipLog::SkipLog(std::string errors_path, int max_messages) : path_(std::move(errors_path)), max_messages_(max_messages) {
  if (path_.empty() || !file_exists(path_)) return;
  std::istringstream in(read_text_file(path_));
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      const int64_t rec = j.value("record", int64_t{-1});
      if (reported_.insert(rec).second) ++counts_[j.value("reason", std::string("unknown"))];
    } catch (...) {  // a torn last line of a killed run
    }
  }
}

bool SkipLog::skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message) {
  if (!reported_.insert(record).second) return false;
  ++counts_[reason];
  if (messages_ < max_messages_) {
    std::fprintf(stderr, "stic: skipping %s\n", message.c_str());
    if (++messages_ == max_messages_) std::fprintf(stderr, "stic: (further skipped records go to errors.jsonl only)\n");
  }
  if (!path_.empty()) {
    if (std::FILE* f = std::fopen(path_.c_str(), "a")) {
      nlohmann::json j = {{"record", record}, {"id", id}, {"reason", reason}, {"message", message}};
      std::fprintf(f, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fclose(f);
    }
  }
  return true;
}

int64_t SkipLog::get(const std::string& key) const {
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

int64_t SkipLog::skipped(const std::set<std::string>& not_skips) const {
  int64_t n = 0;
  for (auto& [k, v] : counts_)
    if (!not_skips.count(k)) n += v;
  return n;
}

std::string SkipLog::reasons(const std::set<std::string>& not_skips) const {
  std::string parts;
  for (auto& [k, v] : counts_)
    if (!not_skips.count(k)) parts += (parts.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return parts;
}

}  // namespace stic
