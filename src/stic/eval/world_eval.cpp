// stic/eval/world_eval.cpp — see world_eval.h.
#include "stic/eval/world_eval.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/infer/batch_job.h"
#include "stic/eval/dar.h"
#include "stic/text/stic_prompts.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;

namespace stic {
namespace {

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
  write_file_atomic(o.out + "/eval_config.json",
                    nlohmann::json({{"verb", "eval"}, {"benchmark", "world"}, {"model", o.model}, {"adapter", o.adapter},
                                    {"data", o.world}, {"device", o.device}, {"dtype", o.dtype},
                                    {"batch_size", o.batch_size}, {"max_new_tokens", o.max_new_tokens},
                                    {"dar", o.dar ? nlohmann::json({{"prompt", o.dar_prompt.empty() ? stic_dar_prompt() : o.dar_prompt},
                                                                     {"max_new_tokens", o.dar_max_new_tokens},
                                                                     {"model", o.dar_model.empty() ? o.model : o.dar_model},
                                                                     {"adapter", o.dar_model.empty() ? o.adapter : o.dar_adapter}})
                                                  : nlohmann::json(false)}})
                            .dump(1) +
                        "\n");

  const std::string pred_path = o.out + "/predictions.jsonl";
  WorldEvalResult res;
  // DaR, step 1: every distinct image described once (greedy), resumable like the answers
  std::map<std::string, std::string> description;  // image (relative to WORLD/images) -> text
  if (o.dar) {
    std::vector<std::string> images;
    read_jsonl(
        req_path,
        [&](size_t, const nlohmann::json& j) {
          const std::string img = j.value("image", std::string());
          if (!img.empty() && description.emplace(img, "").second) images.push_back(img);
        },
        [&](size_t, const std::string& msg) { fail(msg); });
    DarOptions d;
    d.model = o.dar_model.empty() ? o.model : o.dar_model;
    d.adapter = o.dar_model.empty() ? o.adapter : o.dar_adapter;
    d.device = o.device;
    d.dtype = o.dtype;
    d.image_backend = o.image_backend;
    d.prompt = o.dar_prompt;
    d.max_new_tokens = o.dar_max_new_tokens;
    d.batch_size = o.batch_size;
    d.progress = o.progress;
    DarDescriptions dd = dar_describe(d, images, (fs::path(o.world) / "images").string(), o.out + "/dar_descriptions.jsonl");
    res.dar_described = dd.described;
    res.dar_seconds = dd.seconds;
    description = std::move(dd.text);
  }
  {
    BatchJobOptions jo;
    jo.out = pred_path;
    jo.verb = "eval";
    jo.engine.max_batch = o.batch_size;
    jo.write_errors = false;  // not a prediction: scored as missing, retried by a re-run
    jo.progress = o.progress;
    BatchJob job(jo);
    std::vector<GenRequest> reqs;
    read_jsonl(
        req_path,
        [&](size_t line, const nlohmann::json& j) {
          const std::string where = req_path + ":" + std::to_string(line) + ": ";
          if (!j.contains("id") || !j["id"].is_string() || !j.contains("prompt") || !j["prompt"].is_string())
            fail(where, "expected {\"id\": string, \"image\": string, \"prompt\": string}");
          GenRequest q;
          q.id = j["id"].get<std::string>();
          if (!job.wanted(q.id)) return;
          const std::string img = j.value("image", std::string());
          q.image = img.empty() ? "" : (fs::path(o.world) / "images" / img).string();
          q.prompt = j["prompt"].get<std::string>();
          if (o.dar && !img.empty())  // DaR, step 2: the question with its image's description
            if (auto d = description.find(img); d != description.end())
              q.prompt = infuse_description(q.prompt.find("<image>") == std::string::npos ? "<image>\n" + q.prompt : q.prompt,
                                     d->second);
          q.max_new_tokens = short_answer_prompt(q.prompt) ? std::min(o.max_new_tokens, 16) : o.max_new_tokens;
          reqs.push_back(std::move(q));
        },
        [&](size_t, const std::string& msg) { fail(msg); });
    res.resumed = job.resumed();
    if (o.progress)
      std::fprintf(stderr, "stic eval: %zu requests to run, %lld already in %s\n", reqs.size(),
                   static_cast<long long>(res.resumed), pred_path.c_str());
    if (!reqs.empty()) {
      auto model = load_for_inference(o.model, load_options(o.device, o.dtype, "", o.image_backend), o.adapter, o.progress ? "eval" : "");
      const BatchJobResult r = job.run(*model, reqs);
      res.failed = r.failed;
      res.generated = r.stats.requests;
      res.gen_seconds = r.stats.seconds;
    }
  }
  world::ScoreOptions so;
  so.out_dir = o.out;
  res.scores = world::score_world(o.world, pred_path, so);
  return res;
}

}  // namespace stic
