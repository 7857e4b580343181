// stic generate — JSONL requests in, JSONL results out, through the batched engine.
//   request: {"id", "image", "prompt"} (+ optional "template", "max_new_tokens", "temperature",
//            "top_p", "top_k", "seed", "stop")
//   result:  {"id", "text", "token_ids", "num_input_tokens", "num_image_tokens", "finish_reason"}
//            or {"id", "error"} for a request that failed (missing/corrupt image, ...)
// Results are appended and flushed one by one; re-running skips ids already in OUT (a torn
// last line from a killed run is cut first). A malformed request line is reported with its
// line number and skipped; the exit code is then 1 after all valid requests are done.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "stic/infer/batch_job.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "flags.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace stic::app {
namespace {

struct GenerateArgs {
  ModelFlags m;
  SamplingFlags s;
  std::string requests, out, stats, shard, image_dir;
  int batch_size = 16;
  int64_t max_seq_len = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false, no_prefix_share = false;
};

int run_generate(const GenerateArgs& a) {
  check_regular_file(a.requests, "requests file");
  BatchJobOptions jo;
  jo.out = a.out;
  jo.verb = "generate";
  jo.engine.max_batch = a.batch_size;
  jo.engine.max_seq_len = a.max_seq_len;
  jo.engine.ignore_eos = a.ignore_eos;
  jo.engine.share_prefix = !a.no_prefix_share;
  if (!a.shard.empty()) jo.shard = parse_shard(a.shard);
  BatchJob job(jo);

  std::vector<GenRequest> reqs;
  std::map<std::string, size_t> seen;
  size_t malformed = 0;
  auto bad = [&](size_t, const std::string& msg) {
    ++malformed;
    std::fprintf(stderr, "stic generate: %s; skipped\n", msg.c_str());
  };
  read_jsonl(a.requests, [&](size_t line, const nlohmann::json& j) {
    auto where = str_cat(a.requests, ":", line, ": ");
    if (!j.contains("id") || !(j["id"].is_string() || j["id"].is_number_integer()))
      return bad(line, where + "missing \"id\" (a string or integer)");
    if (!j.contains("prompt") || !j["prompt"].is_string()) return bad(line, where + "missing \"prompt\" (a string)");
    if (j.contains("image") && !j["image"].is_null() && !j["image"].is_string())
      return bad(line, where + "\"image\" must be a string (a path)");
    if (j.contains("image") && j["image"].is_string() && j["image"].get<std::string>().empty())
      return bad(line, where + "\"image\" is empty (leave it out, or null, for a text-only request)");
    if (j.contains("seed") && !j["seed"].is_number_unsigned())
      return bad(line, where + "\"seed\" must be an integer >= 0 (got " + j["seed"].dump() + ")");
    GenRequest q;
    q.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    if (seen.count(q.id)) return bad(line, str_cat(where, "duplicate id '", q.id, "' (first on line ", seen[q.id], ")"));
    seen[q.id] = line;
    if (!job.wanted(q.id)) return;
    q.prompt = j["prompt"];
    if (j.contains("image") && j["image"].is_string()) {
      std::string img = j["image"];
      q.image = (!a.image_dir.empty() && fs::path(img).is_relative()) ? (fs::path(a.image_dir) / img).string() : img;
    }
    try {
      q.template_name = j.value("template", a.s.tmpl);
      q.max_new_tokens = j.value("max_new_tokens", a.s.max_new_tokens);
      q.temperature = j.value("temperature", a.s.temperature);
      q.top_p = j.value("top_p", a.s.top_p);
      q.top_k = j.value("top_k", a.s.top_k);
      q.seed = j.contains("seed") ? j["seed"].get<uint64_t>() : request_seed(a.s.seed, q.id);
      q.stop = j.contains("stop") ? j["stop"].get<std::vector<std::string>>() : a.stop;
    } catch (const std::exception& e) {
      return bad(line, where + "bad field type (" + std::string(e.what()).substr(0, 100) + ")");
    }
    const std::string range = sampling_error(q.temperature, q.top_p, q.top_k, q.max_new_tokens);
    if (!range.empty()) return bad(line, where + range);
    reqs.push_back(std::move(q));
  }, bad);

  std::fprintf(stderr, "stic generate: %zu requests to run, %lld already in %s, %zu malformed lines%s\n", reqs.size(),
               static_cast<long long>(job.resumed()), a.out.c_str(), malformed,
               job.other_shard() ? str_cat(", ", job.other_shard(), " in other shards").c_str() : "");
  if (!reqs.empty()) {
    auto model = load_for_inference(a.m, "generate");
    const BatchJobResult r = job.run(*model, reqs);
    const EngineStats& st = r.stats;
    if (!a.stats.empty()) {
      nlohmann::json sj = engine_stats_json(st);
      sj["batch_size"] = a.batch_size;
      write_file_atomic(a.stats, sj.dump(1) + "\n");
    }
    std::fprintf(stderr,
                 "stic generate: %lld done, %lld failed (error records in %s); %lld prompt + %lld generated tokens "
                 "in %.1fs (%.1f tok/s generated); prefix reuse %lld, image cache hits %lld\n",
                 static_cast<long long>(r.done), static_cast<long long>(r.failed), a.out.c_str(),
                 static_cast<long long>(st.prompt_tokens), static_cast<long long>(st.generated_tokens), st.seconds,
                 st.seconds > 0 ? st.generated_tokens / st.seconds : 0.0, static_cast<long long>(st.prefix_hits),
                 static_cast<long long>(st.image_hits));
  }
  if (malformed) fail(a.requests, ": ", malformed, " malformed request line(s) were skipped (see above)");
  return 0;
}

}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* c = app.add_subcommand("generate", "answer a JSONL file of requests with the batched engine (resumable)");
  add_model_flags(c, a->m);
  c->add_option("--requests", a->requests, "requests JSONL: {\"id\", \"image\", \"prompt\"}")->required();
  c->add_option("--out", a->out, "results JSONL (appended; re-running resumes by id)")->required();
  c->add_option("--shard", a->shard, "i/n: run only this process's part of the requests (by a stable hash of the id)");
  c->add_option("--stats", a->stats, "write the engine's counters and timings as JSON (benchmarks)");
  c->add_option("--image-dir", a->image_dir, "folder that relative image paths are read from");
  c->add_option("--batch-size", a->batch_size, "concurrent sequences (slots)")->check(CLI::PositiveNumber);
  add_sampling_flags(c, a->s, "run seed; each request samples with hash(seed, id) unless it sets \"seed\"", true);
  c->add_option("--stop", a->stop, "stop strings");
  c->add_option("--max-seq-len", a->max_seq_len, "KV cache length per slot (0 = from the requests)");
  c->add_flag("--ignore-eos", a->ignore_eos, "always generate max_new_tokens (benchmarks)");
  c->add_flag("--no-prefix-share", a->no_prefix_share, "do not reuse the KV of a shared image prefix");
  verb_callbacks()[c] = [a] { return run_generate(*a); };
}

}  // namespace stic::app
