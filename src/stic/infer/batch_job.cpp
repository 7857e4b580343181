// stic/infer/batch_job.cpp — see batch_job.h.
#include "stic/infer/batch_job.h"

#include <algorithm>
#include <cstdio>

#include "stic/io/distributed.h"
#include "stic/util/error.h"
#include "stic/util/jsonl.h"
#include "stic/util/progress.h"
#include "stic/util/rng.h"

namespace stic {

Shard parse_shard(const std::string& text, const std::string& flag) {
  const size_t slash = text.find('/');
  Shard s;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t used = 0;
    s.index = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("index");
    s.count = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("count");
  } catch (const std::exception&) {
    fail(flag, " '", text, "': expected i/n, e.g. 0/4");
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    fail(flag, " '", text, "': expected 0 <= i < n");
  return s;
}

int shard_of(const std::string& id, int count) {
  return static_cast<int>(hash_id(0, id) % static_cast<uint64_t>(count));
}

nlohmann::json default_record(const GenResult& r) {
  return {{"id", r.id}, {"text", r.text}, {"token_ids", r.token_ids}, {"num_input_tokens", r.num_input_tokens},
          {"num_image_tokens", r.num_image_tokens}, {"finish_reason", r.finish_reason}};
}

void refuse_under_launch(const std::string& verb) {
  if (const DistEnv de = dist_env(); de.world > 1)
    fail("stic ", verb, ": generation runs as one process per part (--shard i/n, each with its own --out), not "
         "as rank ", de.rank, " of ", de.world, " under stic launch / torchrun");
}

BatchJob::BatchJob(BatchJobOptions opts) : opts_(std::move(opts)) {
  refuse_under_launch(opts_.verb);
  writer_ = std::make_unique<JsonlWriter>(opts_.out, &done_);
  if (writer_->repaired_bytes())
    std::fprintf(stderr, "stic %s: %s: cut a torn last line (%zu bytes) left by an interrupted run\n",
                 opts_.verb.c_str(), opts_.out.c_str(), writer_->repaired_bytes());
}

BatchJob::~BatchJob() = default;

bool BatchJob::in_shard(const std::string& id) const {
  return opts_.shard.count <= 1 || shard_of(id, opts_.shard.count) == opts_.shard.index;
}

bool BatchJob::wanted(const std::string& id) {
  if (!in_shard(id)) {
    ++other_shard_;
    return false;
  }
  if (done_.count(id)) {
    ++resumed_;
    return false;
  }
  return true;
}

BatchJobResult BatchJob::run(LoadedModel& model, const std::vector<GenRequest>& requests) {
  return run(model, requests, [&](GenResult& r) {
    if (!r.error.empty()) {
      if (opts_.write_errors) write({{"id", r.id}, {"error", r.error}});
      return;
    }
    write(opts_.record(r));
  });
}

BatchJobResult BatchJob::run(LoadedModel& model, const std::vector<GenRequest>& requests,
                             const std::function<void(GenResult&)>& sink) {
  BatchJobResult res;
  if (requests.empty()) return res;
  Engine engine(model, opts_.engine);
  const int64_t g = std::max(1, opts_.requests_per_unit);
  Progress bar((static_cast<int64_t>(requests.size()) + g - 1) / g, opts_.verb, opts_.progress);
  bar.set_unit(opts_.progress_unit);
  res.stats = engine.run(
      requests,
      [&](GenResult& r) {
        if (!r.error.empty()) {
          if (++res.failed <= opts_.max_error_messages)
            std::fprintf(stderr, "%sstic %s: request %s failed: %s\n", opts_.progress ? "\r\033[K" : "",
                         opts_.verb.c_str(), r.id.c_str(), r.error.c_str());
        } else {
          ++res.done;
        }
        sink(r);
      },
      progress_with_token_rate(bar, static_cast<int>(g)));
  bar.finish();
  return res;
}

void BatchJob::write(const nlohmann::json& record) {
  writer_->write(record);
  if (record.contains("id") && record["id"].is_string()) done_.insert(record["id"].get<std::string>());
}

}  // namespace stic
