// stic/train/skip_log.h — the bad-record log every training task keeps: each skipped record is
// counted once under its reason, named on stderr (the first `max_messages`, then quiet) and
// appended to errors.jsonl as {"record", "id", "reason", "message"}. A resumed run reads the
// errors.jsonl an interrupted run left, so its records are not counted twice.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace stic {

class SkipLog {
 public:
  // errors_path "" = no file.
  explicit SkipLog(std::string errors_path, int max_messages = 20);
  // Counts and reports `record` under `reason` unless it was reported already; returns whether
  // it was new. message: "DATA: record N (id X): why".
  bool skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message);
  bool reported(int64_t record) const { return reported_.count(record) > 0; }
  // Counters beside the skip reasons (e.g. truncated records), not counted as skipped.
  void add(const std::string& key, int64_t n) { counts_[key] += n; }
  const std::map<std::string, int64_t>& counts() const { return counts_; }
  int64_t get(const std::string& key) const;
  // Records skipped, over every reason except the keys in `not_skips`.
  int64_t skipped(const std::set<std::string>& not_skips) const;
  // "reason n, reason n" over the skip reasons (not_skips left out).
  std::string reasons(const std::set<std::string>& not_skips) const;

 private:
  std::string path_;
  int max_messages_, messages_ = 0;
  std::map<std::string, int64_t> counts_;
  std::set<int64_t> reported_;
};

}  // namespace stic
