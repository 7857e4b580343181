// stic/eval/bench_eval.cpp — see bench_eval.h.
#include "stic/eval/bench_eval.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stic/eval/dar.h"
#include "stic/infer/batch_job.h"
#include "stic/text/stic_prompts.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

// The id a question has in an answer file: LLaVA writes question_id (int or string).
std::string id_of(const json& qid) { return qid.is_string() ? qid.get<std::string>() : qid.dump(); }

// An answers file from any system, in LLaVA's layout (stic's own lines also carry "id"):
// Item::id -> answer. Lines naming no question of the benchmark are counted and reported.
std::map<std::string, score::Answer> read_answers(const std::string& path, const score::Benchmark& b,
                                                  std::vector<std::string>& warnings) {
  std::map<std::string, score::Answer> out;
  std::map<std::string, std::string> id_of_key;
  std::set<std::string> ids;
  for (const auto& it : b.items) {
    ids.insert(it.id);
    id_of_key[it.answer_key] = it.id;
  }
  int64_t unknown = 0, repeated = 0;
  std::string first_unknown;
  read_jsonl(
      path,
      [&](size_t line, const json& j) {
        const std::string where = path + ":" + std::to_string(line) + ": ";
        std::string id;
        if (j.contains("id") && j["id"].is_string() && ids.count(j["id"].get<std::string>())) {
          id = j["id"].get<std::string>();
        } else {
          if (!j.contains("question_id")) fail(where, "an answer needs \"question_id\" (LLaVA's answer layout)");
          std::string key = id_of(j["question_id"]);
          if (b.name == "textvqa") key += "\n" + score::textvqa_prompt_question(j.value("prompt", std::string()));
          if (b.name == "mmbench") key += "@" + std::to_string(j.value("round_id", 0));
          auto k = id_of_key.find(key);
          if (k == id_of_key.end()) {
            if (unknown++ == 0) first_unknown = where + "question_id " + id_of(j["question_id"]);
            return;
          }
          id = k->second;
        }
        if (j.contains("error")) return;  // a question that could not be asked: scored as an error
        if (!j.contains("text") || !j["text"].is_string()) fail(where, "answer ", id, " has no \"text\" string");
        if (out.count(id)) ++repeated;
        out[id] = {j["text"].get<std::string>(), j.value("prompt", std::string())};
      },
      [&](size_t, const std::string& msg) { fail(msg); });
  if (unknown)
    warnings.push_back(path + ": " + std::to_string(unknown) + " answer(s) for questions not in " + b.name +
                       "'s question file (first: " + first_unknown + ")");
  if (repeated) warnings.push_back(path + ": " + std::to_string(repeated) + " question(s) answered twice (the last answer counts)");
  return out;
}

// The user turn: LLaVA's eval scripts put the image first ("<image>\n" + question); DaR puts the
// description between (text/stic_prompts.h, the form stage 2 trains on).
std::string user_turn(const score::Item& it, const std::map<std::string, std::string>* descriptions) {
  const std::string turn = it.image.empty() ? it.question : "<image>\n" + it.question;
  if (!descriptions || it.image.empty()) return turn;
  auto d = descriptions->find(it.image);
  return d == descriptions->end() ? turn : infuse_description(turn, d->second);
}

std::string fmt(double v, int prec = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << v;
  return s.str();
}

}  // namespace

BenchEvalResult run_bench_eval(const BenchEvalOptions& o) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) fail(o.out, ": cannot create the output folder: ", ec.message());
  score::LoadOptions lo = o.data;
  if (lo.image_cache.empty()) lo.image_cache = o.out + "/images";
  lo.images = o.answers.empty();  // scoring a file: the images need not be here
  const score::Benchmark b = score::load_benchmark(lo);
  BenchEvalResult res;
  res.questions = static_cast<int64_t>(b.items.size());
  for (const auto& w : b.warnings) std::fprintf(stderr, "stic eval: %s\n", w.c_str());

  const std::string model_id = !o.model_id.empty() ? o.model_id
                               : o.model.empty()   ? std::string("answers")
                                                   : fs::path(o.adapter.empty() ? o.model : o.adapter).filename().string();
  json cfg = {{"verb", "eval"},
              {"benchmark", b.name},
              {"data", o.data.data},
              {"annotations", o.data.annotations},
              {"image_dir", o.data.image_dir},
              {"limit", o.data.limit},
              {"questions", res.questions}};
  if (b.name == "mmbench") cfg["circular"] = o.data.circular;
  if (!o.answers.empty()) {
    cfg["answers"] = o.answers;
  } else {
    cfg.update({{"model", o.model}, {"adapter", o.adapter}, {"model_id", model_id}, {"device", o.device},
                {"dtype", o.dtype}, {"template", o.template_name}, {"batch_size", o.batch_size},
                {"max_new_tokens", o.max_new_tokens > 0 ? o.max_new_tokens : b.max_new_tokens}, {"decoding", "greedy"}});
    cfg["dar"] = o.dar ? json({{"prompt", o.dar_prompt.empty() ? stic_dar_prompt() : o.dar_prompt},
                               {"max_new_tokens", o.dar_max_new_tokens},
                               {"model", o.dar_model.empty() ? o.model : o.dar_model},
                               {"adapter", o.dar_model.empty() ? o.adapter : o.dar_adapter}})
                       : json(false);
  }
  write_file_atomic(o.out + "/eval_config.json", cfg.dump(1) + "\n");

  std::string answers_path = o.answers;
  if (o.answers.empty()) {
    if (o.model.empty()) fail("eval --benchmark ", b.name, ": give --model (or score an existing file with --answers)");
    answers_path = o.out + "/answers.jsonl";
    // DaR, step 1: each distinct image described once (greedy), resumable
    std::map<std::string, std::string> descriptions;  // image path -> description
    if (o.dar) {
      std::vector<std::string> images;
      std::set<std::string> seen;
      for (const auto& it : b.items)
        if (it.error.empty() && !it.image.empty() && seen.insert(it.image).second) images.push_back(it.image);
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
      DarDescriptions dd = dar_describe(d, images, "", o.out + "/dar_descriptions.jsonl");
      res.dar_described = dd.described;
      res.dar_seconds = dd.seconds;
      descriptions = std::move(dd.text);
    }
    // step 2 (or the only step): every question, greedy, in LLaVA's answer layout
    std::map<std::string, const score::Item*> by_id;
    std::map<std::string, std::string> prompt_of;
    BatchJobOptions jo;
    jo.out = answers_path;
    jo.verb = "eval";
    jo.engine.max_batch = o.batch_size;
    jo.shard = {o.shard_index, o.shard_count};
    jo.write_errors = true;  // an unreadable image: an error record, counted as an error
    jo.progress = o.progress;
    jo.progress_unit = "questions";
    jo.record = [&](const GenResult& g) {
      const score::Item& it = *by_id.at(g.id);
      return json{{"question_id", it.question_id}, {"prompt", prompt_of.at(g.id)}, {"text", strip(g.text)},
                  {"answer_id", g.id},         {"model_id", model_id},           {"metadata", json::object()},
                  {"id", g.id},                {"finish_reason", g.finish_reason}};
    };
    BatchJob job(jo);
    std::vector<GenRequest> reqs;
    for (const auto& it : b.items) {
      by_id[it.id] = &it;
      if (!it.error.empty() || !job.wanted(it.id)) continue;
      GenRequest q;
      q.id = it.id;
      q.image = it.image;
      q.prompt = user_turn(it, o.dar ? &descriptions : nullptr);
      prompt_of[it.id] = q.prompt;
      q.template_name = o.template_name;
      q.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : b.max_new_tokens;
      q.temperature = 0;  // greedy, as LLaVA's eval scripts (temperature 0)
      reqs.push_back(std::move(q));
    }
    res.resumed = job.resumed();
    if (o.progress)
      std::fprintf(stderr, "stic eval: %s, %lld questions: %zu to run, %lld already in %s\n", b.name.c_str(),
                   static_cast<long long>(res.questions), reqs.size(), static_cast<long long>(res.resumed),
                   answers_path.c_str());
    if (!reqs.empty()) {
      auto model = load_for_inference(o.model, load_options(o.device, o.dtype, "", o.image_backend), o.adapter, o.progress ? "eval" : "");
      const BatchJobResult r = job.run(*model, reqs);
      res.failed = r.failed;
      res.generated = r.stats.requests;
      res.gen_seconds = r.stats.seconds;
    }
    if (o.shard_count > 1) {
      // one shard's answers: the scores are for the merged file (stic eval --answers on it)
      res.scores.summary = {{"benchmark", b.name}, {"shard", std::to_string(o.shard_index) + "/" + std::to_string(o.shard_count)}};
      return res;
    }
  }
  if (!file_exists(answers_path)) fail(answers_path, ": no such answers file");
  std::vector<std::string> warnings;
  const auto answers = read_answers(answers_path, b, warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "stic eval: %s\n", w.c_str());
  res.scores = score::score_benchmark(b, answers);
  if (!warnings.empty()) res.scores.summary["answer_file_warnings"] = warnings;
  res.scores.summary["answers"] = answers_path;
  if (!o.answers.empty()) res.scores.summary["scored_file"] = o.answers;
  if (o.dar) res.scores.summary["dar"] = true;
  {
    std::string lines;
    for (const auto& r : res.scores.per_item) lines += r.dump() + "\n";
    write_file_atomic(o.out + "/per_question.jsonl", lines);
  }
  write_file_atomic(o.out + "/summary.json", res.scores.summary.dump(1) + "\n");
  write_file_atomic(o.out + "/summary.md", res.scores.markdown);
  if (b.name == "mm-vet") {
    // MM-Vet's judge reads one JSON object {question_id: answer} (LLaVA convert_mmvet_for_eval.py)
    json mv = json::object();
    for (const auto& it : b.items)
      if (auto a = answers.find(it.id); a != answers.end()) mv[id_of(it.question_id)] = a->second.text;
    write_file_atomic(o.out + "/mmvet_results.json", mv.dump(1) + "\n");
  }
  return res;
}

std::string compare_runs(const std::vector<std::string>& dirs) {
  if (dirs.size() < 2) fail("eval --compare: give two or more eval output folders");
  std::vector<json> sums;
  for (const auto& d : dirs) {
    const std::string p = d + "/summary.json";
    if (!file_exists(p)) fail(p, ": missing (not a finished stic eval output folder)");
    json j;
    try {
      j = json::parse(read_text_file(p));
    } catch (const json::exception& e) {
      fail(p, ": not valid JSON: ", e.what());
    }
    if (!j.contains("metrics") || !j["metrics"].is_object()) fail(p, ": has no \"metrics\" object");
    sums.push_back(std::move(j));
  }
  const std::string bench = sums[0].value("benchmark", std::string("?"));
  for (size_t i = 1; i < sums.size(); ++i)
    if (sums[i].value("benchmark", std::string("?")) != bench)
      fail("eval --compare: ", dirs[i], " is ", sums[i].value("benchmark", std::string("?")), ", ", dirs[0], " is ",
           bench, " (compare runs of one benchmark)");
  std::ostringstream md;
  md << "## " << bench << ": " << dirs.size() << " runs (difference to " << dirs[0] << ")\n\n| |";
  for (const auto& d : dirs) md << " " << d << " |";
  md << "\n|---|";
  for (size_t i = 0; i < dirs.size(); ++i) md << "---|";
  md << "\n";
  auto row = [&](const std::string& label, const std::vector<const json*>& vals) {
    md << "| " << label << " |";
    const double base = vals[0] && vals[0]->is_number() ? vals[0]->get<double>() : NAN;
    for (size_t i = 0; i < vals.size(); ++i) {
      if (!vals[i] || !vals[i]->is_number()) {
        md << " – |";
        continue;
      }
      const double v = vals[i]->get<double>();
      md << " " << fmt(v);
      if (i > 0 && !std::isnan(base)) md << " (" << (v - base >= 0 ? "+" : "") << fmt(v - base) << ")";
      md << " |";
    }
    md << "\n";
  };
  // metrics of the first run, in its order; then per category
  for (auto& [k, v] : sums[0]["metrics"].items()) {
    if (!v.is_number()) continue;
    std::vector<const json*> vals;
    for (const auto& s : sums) vals.push_back(s["metrics"].contains(k) ? &s["metrics"][k] : nullptr);
    row(k, vals);
  }
  if (sums[0].contains("categories") && sums[0]["categories"].is_object()) {
    for (auto& [cat, m] : sums[0]["categories"].items()) {
      if (!m.is_object() || !m.contains("accuracy")) continue;
      std::vector<const json*> vals;
      for (const auto& s : sums) {
        const json* c = s.contains("categories") && s["categories"].contains(cat) ? &s["categories"][cat] : nullptr;
        vals.push_back(c && c->contains("accuracy") ? &(*c)["accuracy"] : nullptr);
      }
      row(cat + " accuracy", vals);
    }
  }
  std::vector<const json*> errs;
  std::vector<json> counts;
  counts.reserve(sums.size());
  for (const auto& s : sums) counts.push_back(s.contains("errors") ? s["errors"].value("count", 0) : 0);
  for (const auto& c : counts) errs.push_back(&c);
  row("errors", errs);
  return md.str();
}

}  // namespace stic
