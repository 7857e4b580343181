// stic/util/jsonl.h — append-only JSONL outputs that survive kill -9, and located JSONL reading.
//
// JsonlWriter locks OUT (one writer: a second process on the same file is refused, naming the
// first) and opens it for appending after repairing it: a torn last line (a run killed
// mid-write) is cut off, and the ids of the complete records are returned so a resumed run
// skips them. Each record is written with one write and flushed, so a finished result is never
// lost and never half-written.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace stic {

class FileLock;

class JsonlWriter {
 public:
  // `done_ids` receives the "id" of every complete record already in the file.
  JsonlWriter(const std::string& path, std::set<std::string>* done_ids, const char* id_key = "id");
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }
  size_t repaired_bytes() const { return repaired_; }  // bytes of a torn tail that were cut

 private:
  std::string path_;
  std::unique_ptr<FileLock> lock_;
  std::FILE* f_ = nullptr;
  size_t repaired_ = 0;
};

// Calls fn(line_number, record) for each line of a JSONL file; a line that is not a JSON object
// calls on_bad(line_number, message) instead (message names file and line). Blank lines skip.
void read_jsonl(const std::string& path, const std::function<void(size_t, const nlohmann::json&)>& fn,
                const std::function<void(size_t, const std::string&)>& on_bad);

// Reads a file that is either one JSON list or JSONL (blank lines skipped): `fn(index, where,
// value)` per element or line, where `index` counts every element / non-blank line from 0 and
// `where` is "line N" or "element N". A JSONL line that is not valid JSON goes to
// `on_bad(index, where, parser message)` instead; a file that starts with '[' and is not valid
// JSON is a stic::Error naming the path and `what` (e.g. "a list of LLaVA records").
void read_json_records(const std::string& path, const std::string& what,
                       const std::function<void(size_t, const std::string&, nlohmann::json&)>& fn,
                       const std::function<void(size_t, const std::string&, const std::string&)>& on_bad);

}  // namespace stic
