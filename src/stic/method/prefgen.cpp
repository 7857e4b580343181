// stic/method/prefgen.cpp — see prefgen.h.
#include "stic/method/prefgen.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <iomanip>
#include <sstream>

#include "stic/io/pref_records.h"
#include "stic/method/pools.h"
#include "stic/method/pref_data.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

struct ImageItem {
  std::string id, path;
  size_t line = 0;  // in the image list (0: from a folder listing)
};

std::vector<ImageItem> list_images(const PrefGenOptions& o) {
  std::vector<ImageItem> items;
  if (!o.image_list.empty()) {
    for (const auto& [n, s] : read_list_file(o.image_list)) {
      const std::string path = !o.image_dir.empty() && fs::path(s).is_relative() ? (fs::path(o.image_dir) / s).string() : s;
      items.push_back({s, path, n});
    }
    return items;
  }
  if (o.image_dir.empty()) fail("generate-pref: give --image-dir or --image-list");
  for (const std::string& name : list_pool_images(o.image_dir, ""))  // sorted by name
    items.push_back({name, (fs::path(o.image_dir) / name).string(), 0});
  return items;
}

json corruption_json(const ImageTransform& t, bool applied) {
  json j = {{"kind", t.name()}, {"applied", applied}};
  if (t.kind == ImageTransform::Kind::LowRes) j["short_side"] = t.short_side;
  if (t.kind == ImageTransform::Kind::Jitter) {
    j["brightness"] = t.brightness;
    j["hue"] = t.hue;
  }
  return j;
}

std::string safe_file_name(const std::string& id) {
  std::string s;
  for (char c : id) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  return s;
}

constexpr char kSep = '#';  // request id = image id + kSep + side (the side has no '#')

// A float flag as the number the user wrote (0.2f would print as 0.20000000298...).
double as_written(float x) { return std::stod(str_cat(std::setprecision(7), x)); }

}  // namespace

json summarize_pairs(const std::string& pairs_path, const std::string& errors_path) {
  json s = {{"pairs", 0}, {"by_kind", json::object()}, {"skipped", json::object()}, {"degenerate", 0}};
  int64_t n = 0, degenerate = 0, tok_c = 0, tok_r = 0, with_tokens = 0, limit_c = 0, limit_r = 0;
  if (file_exists(pairs_path)) {
    for (const auto& r : read_pref_records(pairs_path, [](size_t, const std::string&, const std::string&) {})) {
      const json& j = r.j;
      ++n;
      const std::string kind = pref_record_kind(j);
      s["by_kind"][kind] = s["by_kind"].value(kind, 0) + 1;
      if (j["chosen"].back().value("content", std::string()) == j["rejected"].back().value("content", std::string()))
        ++degenerate;
      if (j.contains("chosen_info") && j.contains("rejected_info")) {
        ++with_tokens;
        tok_c += j["chosen_info"].value("tokens", 0);
        tok_r += j["rejected_info"].value("tokens", 0);
        limit_c += j["chosen_info"].value("finish_reason", std::string()) == "length";
        limit_r += j["rejected_info"].value("finish_reason", std::string()) == "length";
      }
    }
  }
  s["pairs"] = n;
  s["degenerate"] = degenerate;
  if (with_tokens) {
    s["answer_tokens_mean"] = {{"chosen", static_cast<double>(tok_c) / with_tokens},
                               {"rejected", static_cast<double>(tok_r) / with_tokens}};
    s["hit_token_limit"] = {{"chosen", limit_c}, {"rejected", limit_r}};
  }
  if (file_exists(errors_path))
    read_jsonl(
        errors_path,
        [&](size_t, const json& j) {
          const std::string why = j.value("reason", std::string("unknown"));
          s["skipped"][why] = s["skipped"].value(why, 0) + 1;
        },
        [](size_t, const std::string&) {});
  return s;
}

PrefGenResult run_generate_pref(const PrefGenOptions& o) {
  refuse_under_launch("generate-pref");  // before its errors file is opened
  if (o.out.empty()) fail("generate-pref: --out is required");
  if (!(o.p_bad_prompt >= 0 && o.p_bad_prompt <= 1)) fail("--p-bad-prompt must lie in [0, 1]");
  const PrefPrompts prompts = o.prompts.empty() ? default_pref_prompts() : load_pref_prompts(o.prompts);
  for (const auto& c : o.corruptions)  // unknown corruption names fail here, before any work
    draw_pref(o.seed, "", o.p_bad_prompt, {c}, prompts);
  const std::vector<ImageItem> items = list_images(o);
  {
    std::error_code ec;
    const fs::path parent = fs::path(o.out).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  const std::string errors_path = o.out + ".errors.jsonl";
  JsonlWriter errors(errors_path, nullptr);
  // images recorded as failed: id -> the path that failed (another --image-dir retries them)
  std::map<std::string, std::string> error_paths;
  std::set<size_t> dup_lines;  // duplicate list lines already recorded
  read_jsonl(
      errors_path,
      [&](size_t, const json& j) {
        if (j.contains("duplicate_of")) dup_lines.insert(j.value("line", size_t{0}));
        else if (j.contains("id") && j["id"].is_string()) error_paths[j["id"]] = j.value("image", std::string());
      },
      [](size_t, const std::string&) {});

  BatchJobOptions jo;
  jo.out = o.out;
  jo.verb = "generate-pref";
  jo.engine.max_batch = o.batch_size;
  jo.engine.ignore_eos = o.ignore_eos;
  jo.shard = o.shard;
  jo.progress = o.progress;
  jo.progress_unit = "images";  // the two requests of an image are adjacent
  jo.requests_per_unit = 2;
  BatchJob job(jo);

  PrefGenResult res;
  std::map<std::string, size_t> seen;
  struct Pending {
    const ImageItem* item;
    PrefDraw draw;
    std::string rejected_prompt;
    bool failed = false;
    GenResult chosen, rejected;
    int have = 0;
  };
  std::map<std::string, Pending> pending;
  std::vector<GenRequest> reqs;
  auto record_error = [&](const ImageItem& it, const std::string& reason, const std::string& message) {
    errors.write({{"id", it.id}, {"image", it.path}, {"reason", reason}, {"message", message}});
    error_paths[it.id] = it.path;
    ++res.skipped;
  };
  if (!o.save_corrupted.empty()) {
    std::error_code ec;
    fs::create_directories(o.save_corrupted, ec);
    if (ec) fail(o.save_corrupted, ": cannot create the folder: ", ec.message());
  }
  for (const ImageItem& it : items) {
    if (!job.in_shard(it.id)) continue;
    ++res.images;
    auto [prev, fresh] = seen.emplace(it.id, it.line);
    if (!fresh) {
      if (!dup_lines.count(it.line)) {
        errors.write({{"duplicate_of", it.id}, {"image", it.path}, {"line", it.line}, {"reason", "duplicate"},
                      {"message", str_cat(o.image_list, ": line ", it.line, ": '", it.id, "' was listed on line ",
                                          prev->second, " already; skipped")}});
        ++res.skipped;
      }
      continue;
    }
    if (auto e = error_paths.find(it.id); e != error_paths.end() && e->second == it.path) {
      ++res.resumed;
      continue;
    }
    if (!job.wanted(it.id)) {
      ++res.resumed;
      continue;
    }
    if (const std::string why = regular_file_problem(it.path); !why.empty()) {
      record_error(it, "missing", str_cat(it.path, ": ", why,
                                          it.line ? str_cat(" (", o.image_list, ": line ", it.line, ")") : ""));
      continue;
    }
    Pending p;
    p.item = &it;
    p.draw = draw_pref(o.seed, it.id, o.p_bad_prompt, o.corruptions, prompts);
    const std::string& stored = prompts.normal[static_cast<size_t>(p.draw.stored_prompt)];
    GenRequest c;
    c.id = it.id + kSep + "chosen";
    c.image = it.path;
    c.prompt = prompts.preferred;
    c.template_name = o.template_name;
    c.max_new_tokens = o.max_new_tokens;
    c.temperature = o.temperature;
    c.top_p = o.top_p;
    c.top_k = o.top_k;
    c.seed = request_seed(o.seed, c.id);
    GenRequest r = c;
    r.id = it.id + kSep + "rejected";
    r.seed = request_seed(o.seed, r.id);
    if (p.draw.bad_prompt) {
      r.prompt = prompts.hallucination[static_cast<size_t>(p.draw.hallu_prompt)];
    } else {
      r.prompt = stored;
      if (!o.released_compat) r.transform = p.draw.corruption;
      if (!o.save_corrupted.empty() && !o.released_compat) {
        const std::string png = (fs::path(o.save_corrupted) / (safe_file_name(it.id) + ".png")).string();
        Image im;
        try {
          im = p.draw.corruption.apply(image_load(it.path));
        } catch (const Error&) {  // an unreadable image: the engine reports it
        }
        if (im.width > 0 && !image_save_png(im, png)) fail(png, ": cannot write the corrupted image");
      }
    }
    p.rejected_prompt = r.prompt;
    pending.emplace(it.id, std::move(p));
    reqs.push_back(std::move(c));
    reqs.push_back(std::move(r));
  }
  if (o.progress)
    std::fprintf(stderr, "stic generate-pref: %lld images (this shard), %lld already done, %zu to generate\n",
                 static_cast<long long>(res.images), static_cast<long long>(res.resumed), pending.size());

  if (!reqs.empty()) {
    auto loaded = load_for_inference(o.model, load_options(o.device, o.dtype, o.vision_tower, o.image_backend), o.adapter,
                                     o.progress ? "generate-pref" : "");
    LoadedModel& model = *loaded;
    if (!o.image_mode.empty()) model.set_image_mode(parse_image_mode(o.image_mode));
    // every prompt renders with this template and one image: a bad prompt file or template fails
    // here, before any image is generated (and none is blamed for it)
    for (const auto* set : {&prompts.normal, &prompts.hallucination})
      for (const auto& q : *set) model.prompt_ids(q, o.template_name, true);
    model.prompt_ids(prompts.preferred, o.template_name, true);
    const json sampling = {{"temperature", as_written(o.temperature)}, {"top_p", as_written(o.top_p)}, {"top_k", o.top_k},
                           {"max_new_tokens", o.max_new_tokens}, {"template", o.template_name},
                           {"image_mode", o.image_mode.empty() ? "model" : o.image_mode}, {"seed", o.seed}};
    const auto t0 = std::chrono::steady_clock::now();
    int64_t other_failures = 0;
    std::string first_failure;
    res.stats = job.run(model, reqs, [&](GenResult& g) {
      const size_t cut = g.id.rfind(kSep);
      const std::string id = g.id.substr(0, cut);
      const bool is_chosen = g.id.compare(cut + 1, std::string::npos, "chosen") == 0;
      auto pit = pending.find(id);
      if (pit == pending.end()) return;
      Pending& p = pit->second;
      if (!g.error.empty()) {
        if (g.error_kind != "image") {  // not the image's fault: retried by a re-run
          if (other_failures++ == 0) first_failure = g.error;
        } else if (!p.failed) {
          const bool missing = g.error.find("does not exist") != std::string::npos;
          record_error(*p.item, missing ? "missing" : "decode", g.error);
        }
        p.failed = true;
      } else {
        (is_chosen ? p.chosen : p.rejected) = g;
      }
      if (++p.have < 2) return;
      if (!p.failed) {
        const ImageItem& it = *p.item;
        const std::string& stored = prompts.normal[static_cast<size_t>(p.draw.stored_prompt)];
        const std::string user = o.released_compat ? stored : "<image>\n" + stored;
        auto info = [](const GenResult& x) {
          return json{{"finish_reason", x.finish_reason}, {"tokens", x.token_ids.size()},
                      {"input_tokens", x.num_input_tokens}};
        };
        json pair = {{"id", it.id},
                     {"image", it.id},
                     {"image_corruption", !p.draw.bad_prompt},
                     {"hallu_prompt", p.draw.bad_prompt ? p.rejected_prompt : ""},
                     {"chosen", json::array({{{"role", "user"}, {"content", user}},
                                             {{"role", "assistant"}, {"content", strip(p.chosen.text)}}})},
                     {"rejected", json::array({{{"role", "user"}, {"content", user}},
                                               {{"role", "assistant"}, {"content", strip(p.rejected.text)}}})},
                     {"kind", p.draw.bad_prompt ? "bad_prompt" : p.draw.corruption.name()},
                     {"corruption", p.draw.bad_prompt ? json(nullptr) : corruption_json(p.draw.corruption, !o.released_compat)},
                     {"prompts", {{"chosen", prompts.preferred}, {"rejected", p.rejected_prompt}}},
                     {"model", o.model},
                     {"adapter", o.adapter},
                     {"sampling", sampling},
                     {"chosen_info", info(p.chosen)},
                     {"rejected_info", info(p.rejected)}};
        job.write(pair);
        ++res.written;
      }
      pending.erase(pit);
    }).stats;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (other_failures)
      fail(o.out, ": ", other_failures, " request(s) failed for a reason other than their image (first: ",
           first_failure, "); the pairs done are kept, re-run to retry");
  }
  res.summary = summarize_pairs(o.out, errors_path);
  res.summary["this_run"] = {{"images", res.images}, {"resumed", res.resumed}, {"pairs_written", res.written},
                             {"skipped", res.skipped}, {"seconds", res.seconds},
                             {"images_per_s", res.seconds > 0 ? res.written / res.seconds : 0.0}};
  write_file_atomic(o.out + ".summary.json", res.summary.dump(1) + "\n");
  if (!o.stats.empty()) {
    json sj = engine_stats_json(res.stats);
    sj["batch_size"] = o.batch_size;
    sj["images"] = res.written;
    sj["images_per_s"] = res.seconds > 0 ? res.written / res.seconds : 0.0;
    write_file_atomic(o.stats, sj.dump(1) + "\n");
  }
  return res;
}

}  // namespace stic
