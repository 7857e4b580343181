// stic/eval/world_eval.cpp — see world_eval.h.
#include "stic/eval/world_eval.h"

#include <cstdio>
#include <filesystem>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/infer/engine.h"
#include "stic/infer/runner.h"
#include "stic/model/lora.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/progress.h"

namespace fs = std::filesystem;

namespace stic {
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Short-answer prompts (LLaVA's single-word / option-letter suffixes) need only a few tokens. The
// suffix ends the text; an image marker may follow it (a question asked before the image).
bool short_answer_prompt(std::string prompt) {
  if (ends_with(prompt, "\n<image>")) prompt.resize(prompt.size() - 8);
  return ends_with(prompt, "Answer the question using a single word or phrase.") ||
         ends_with(prompt, "Answer with the option's letter from the given choices directly.");
}

}  // namespace

WorldEvalResult run_world_eval(const WorldEvalOptions& o) {
  const std::string req_path = o.world + "/eval/requests.jsonl";
  if (!file_exists(o.world + "/world.json"))
    fail(o.world, ": not a stic world (world.json is missing; build one with `stic world --out DIR`)");
  if (!file_exists(req_path)) fail(req_path, ": missing (the world is incomplete: re-run `stic world`)");
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) fail(o.out, ": cannot create the output folder: ", ec.message());
  {
    nlohmann::json cfg = {{"verb", "eval"}, {"benchmark", "world"}, {"model", o.model}, {"adapter", o.adapter},
                          {"data", o.world}, {"device", o.device}, {"dtype", o.dtype},
                          {"batch_size", o.batch_size}, {"max_new_tokens", o.max_new_tokens}};
    AtomicFile f(o.out + "/eval_config.json");
    f.write(cfg.dump(1) + "\n");
    f.commit();
  }

  const std::string pred_path = o.out + "/predictions.jsonl";
  WorldEvalResult res;
  std::vector<GenRequest> reqs;
  {
    std::set<std::string> done;
    JsonlWriter writer(pred_path, &done);
    if (writer.repaired_bytes())
      std::fprintf(stderr, "stic eval: %s: cut a torn last line (%zu bytes) left by a killed run\n", pred_path.c_str(),
                   writer.repaired_bytes());
    read_jsonl(
        req_path,
        [&](size_t line, const nlohmann::json& j) {
          const std::string where = req_path + ":" + std::to_string(line) + ": ";
          if (!j.contains("id") || !j["id"].is_string() || !j.contains("prompt") || !j["prompt"].is_string())
            fail(where, "expected {\"id\": string, \"image\": string, \"prompt\": string}");
          GenRequest q;
          q.id = j["id"].get<std::string>();
          if (done.count(q.id)) {
            ++res.resumed;
            return;
          }
          const std::string img = j.value("image", std::string());
          q.image = img.empty() ? "" : (fs::path(o.world) / "images" / img).string();
          q.prompt = j["prompt"].get<std::string>();
          q.max_new_tokens = short_answer_prompt(q.prompt) ? std::min(o.max_new_tokens, 16) : o.max_new_tokens;
          reqs.push_back(std::move(q));
        },
        [&](size_t, const std::string& msg) { fail(msg); });
    if (o.progress)
      std::fprintf(stderr, "stic eval: %zu requests to run, %lld already in %s\n", reqs.size(),
                   static_cast<long long>(res.resumed), pred_path.c_str());
    if (!reqs.empty()) {
      const LoadOptions lo = load_options(o.device, o.dtype);
      Runner runner(o.model, lo);
      if (!o.adapter.empty()) {
        auto rep = load_adapter(runner.model(), o.adapter);
        merge_all_lora(runner.model());  // the engine then runs the plain (merged) weights
        if (o.progress)
          std::fprintf(stderr, "stic eval: adapter %s merged (%d LoRA modules)\n", o.adapter.c_str(), rep.lora_modules);
      }
      runner.model()->eval();
      EngineOptions eo;
      eo.max_batch = o.batch_size;
      Engine engine(runner, eo);
      Progress bar(static_cast<int64_t>(reqs.size()), "eval", o.progress);
      auto st = engine.run(
          reqs,
          [&](GenResult& r) {
            if (!r.error.empty()) {  // not a prediction: scored as missing, retried by a re-run
              ++res.failed;
              if (res.failed <= 10) std::fprintf(stderr, "stic eval: request %s failed: %s\n", r.id.c_str(), r.error.c_str());
              return;
            }
            writer.write({{"id", r.id}, {"text", r.text}, {"token_ids", r.token_ids},
                          {"num_input_tokens", r.num_input_tokens}, {"finish_reason", r.finish_reason}});
          },
          progress_with_token_rate(bar));
      bar.finish();
      res.generated = st.requests;
      res.gen_seconds = st.seconds;
    }
  }
  world::ScoreOptions so;
  so.out_dir = o.out;
  res.scores = world::score_world(o.world, pred_path, so);
  return res;
}

}  // namespace stic
