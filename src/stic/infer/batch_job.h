// stic/infer/batch_job.h — the resumable "requests -> engine -> JSONL" job that every
// generation verb runs (stic generate, the world eval; preference data, descriptions and DaR
// build on it too).
//
//   BatchJob job(opts);                          // opens OUT: torn last line cut, finished ids read
//   for (each request) if (!job.wanted(id)) ...  // finished earlier, or another shard's
//   auto r = job.run(model, requests);           // engine; one flushed record per result
//
// OUT is append-only: each result is one JSON line written with one write and flushed, so a
// kill -9 loses at most the line being written (cut on the next open) and a re-run skips every
// id already there. A failed request (missing or corrupt image, ...) is an error record
// {"id", "error"} when `write_errors` (then it counts as finished), or is left out (and retried
// by a re-run) otherwise. Sharding: with shard {i, n}, the job keeps the ids whose stable hash
// is i mod n, so n processes (or ranks) split one request file without talking to each other.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/infer/engine.h"

namespace stic {

class JsonlWriter;

struct Shard {
  int index = 0, count = 1;  // this process's part: ids with shard_of(id, count) == index
};
// Parses "i/n" (0 <= i < n); throws stic::Error naming `flag`.
Shard parse_shard(const std::string& text, const std::string& flag = "--shard");
// The shard an id belongs to among `count` (a stable hash of the id: same on every machine).
int shard_of(const std::string& id, int count);

// The output record of a result: generate's {"id", "text", "token_ids", "num_input_tokens",
// "num_image_tokens", "finish_reason"} by default.
nlohmann::json default_record(const GenResult& r);

// Generation is not data-parallel yet: the ranks of one job would each generate everything into
// one file, so a BatchJob (and a verb, before it opens its own files) refuses WORLD_SIZE > 1,
// naming the way that works (one process per --shard i/n).
void refuse_under_launch(const std::string& verb);

struct BatchJobOptions {
  std::string out;                   // the JSONL output (created; appended to)
  std::string verb = "generate";     // names the job in messages ("stic VERB: ...")
  EngineOptions engine = engine_options_from_env();  // the STIC_* fast-path switches apply
  Shard shard;
  bool write_errors = true;          // failed requests as {"id", "error"} records (finished)
  int max_error_messages = 10;       // per-failure lines on stderr before going quiet
  bool progress = true;              // progress bar with requests/s, tokens/s and ETA
  std::string progress_unit;         // what the bar counts ("images", "questions"; "" = requests)
  int requests_per_unit = 1;         // requests per counted unit (generate-pref: 2 per image)
  std::function<nlohmann::json(const GenResult&)> record = default_record;
};

struct BatchJobResult {
  EngineStats stats;
  int64_t done = 0;      // results written this run (error records excluded)
  int64_t failed = 0;    // requests that failed this run
};

class BatchJob {
 public:
  explicit BatchJob(BatchJobOptions opts);  // throws stic::Error if OUT cannot be opened
  ~BatchJob();
  // Whether the id belongs to this process's shard.
  bool in_shard(const std::string& id) const;
  // False for an id that is already in OUT (counted as resumed) or belongs to another shard.
  bool wanted(const std::string& id);
  int64_t resumed() const { return resumed_; }
  int64_t other_shard() const { return other_shard_; }
  // Runs the requests through the engine on `model`; records are written as they finish.
  BatchJobResult run(LoadedModel& model, const std::vector<GenRequest>& requests);
  // The same with the caller writing: `sink` gets every result (failed ones too) and calls
  // write() for what it keeps (e.g. one record for two requests).
  BatchJobResult run(LoadedModel& model, const std::vector<GenRequest>& requests,
                     const std::function<void(GenResult&)>& sink);
  // Appends one record (one write, flushed) and counts its id as finished.
  void write(const nlohmann::json& record);

 private:
  BatchJobOptions opts_;
  std::unique_ptr<JsonlWriter> writer_;
  std::set<std::string> done_;
  int64_t resumed_ = 0, other_shard_ = 0;
};

}  // namespace stic
