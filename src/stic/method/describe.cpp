// stic/method/describe.cpp — see describe.h.
#include "stic/method/describe.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "stic/method/pref_data.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/rng.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

struct Item {
  std::string id, image;  // image as the data names it
  size_t index = 0;       // record / line number, for messages
};

bool looks_like_image_list(const std::string& path) {
  const std::string text = read_text_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first == std::string::npos || (text[first] != '[' && text[first] != '{');
}

double as_written(float x) { return std::stod(str_cat(std::setprecision(7), x)); }

}  // namespace

int describe_prompt_index(uint64_t seed, const std::string& image, size_t n_prompts) {
  if (n_prompts == 0) fail("describe: the prompt set is empty");
  return static_cast<int>(hash_id(seed ^ 0x64657363ULL /* "desc" */, image) % n_prompts);
}

DescribeResult run_describe(const DescribeOptions& o) {
  if (o.data.empty() || o.out.empty()) fail("describe: --data and --out are required");
  if (!file_exists(o.data)) fail(o.data, ": does not exist");
  const PrefPrompts prompts = o.prompts.empty() ? default_pref_prompts() : load_pref_prompts(o.prompts);
  if (o.prompt.empty() && prompts.normal.empty()) fail(o.prompts, ": the \"normal\" prompt set is empty");

  // the records (or images) to describe
  DescribeResult res;
  std::vector<Item> items;
  int printed = 0;
  auto skip = [&](const std::string& message) {
    ++res.skipped;
    if (printed++ < 10) std::fprintf(stderr, "stic describe: %s\n", message.c_str());
  };
  if (looks_like_image_list(o.data)) {
    for (const auto& [n, s] : read_list_file(o.data)) items.push_back({s, s, n});
  } else {
    read_json_records(
        o.data, "a list of LLaVA records",
        [&](size_t index, const std::string& where, const json& j) {
          if (!j.is_object() || !j.contains("id")) {
            skip(str_cat(o.data, ": ", where, ": not a record with an \"id\"; skipped"));
            return;
          }
          const std::string id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
          if (!j.contains("image") || !j["image"].is_string() || j["image"].get<std::string>().empty()) {
            skip(str_cat(o.data, ": ", where, " (id ", id, "): no image; skipped"));
            return;
          }
          items.push_back({id, j["image"].get<std::string>(), index});
        },
        [&](size_t, const std::string& where, const std::string& why) {
          skip(str_cat(o.data, ": ", where, ": not valid JSON (", why, "); skipped"));
        });
  }
  // group by image (first appearance order); a repeated id is skipped
  std::map<std::string, size_t> seen_ids;
  std::vector<std::string> image_order;
  std::map<std::string, std::vector<std::string>> ids_of;
  for (const Item& it : items) {
    auto [prev, fresh] = seen_ids.emplace(it.id, it.index);
    if (!fresh) {
      skip(str_cat(o.data, ": id ", it.id, " appears again (", it.index, " and ", prev->second, " before); skipped"));
      continue;
    }
    auto& ids = ids_of[it.image];
    if (ids.empty()) image_order.push_back(it.image);
    ids.push_back(it.id);
  }

  {
    std::error_code ec;
    const fs::path parent = fs::path(o.out).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  BatchJobOptions jo;
  jo.out = o.out;
  jo.verb = "describe";
  jo.engine.max_batch = o.batch_size;
  jo.engine.ignore_eos = o.ignore_eos;
  jo.progress = o.progress;
  jo.progress_unit = "images";
  BatchJob job(jo);  // no shard here: the split is by image, below

  std::map<std::string, std::vector<std::string>> pending;  // image -> ids to write
  std::map<std::string, std::string> prompt_of;
  std::vector<GenRequest> reqs;
  for (const std::string& image : image_order) {
    if (shard_of(image, o.shard.count) != o.shard.index) continue;
    ++res.images;
    std::vector<std::string> want;
    for (const std::string& id : ids_of[image]) {
      ++res.records;
      if (job.wanted(id)) want.push_back(id);
      else ++res.resumed;
    }
    if (want.empty()) continue;
    GenRequest q;
    q.id = image;
    q.image = !o.image_dir.empty() && fs::path(image).is_relative() ? (fs::path(o.image_dir) / image).string() : image;
    q.prompt = !o.prompt.empty() ? o.prompt
                                 : prompts.normal[static_cast<size_t>(describe_prompt_index(o.seed, image, prompts.normal.size()))];
    q.template_name = o.template_name;
    q.max_new_tokens = o.max_new_tokens;
    q.temperature = o.temperature;
    q.top_p = o.top_p;
    q.top_k = o.top_k;
    q.seed = request_seed(o.seed, image);
    prompt_of[image] = q.prompt;
    pending[image] = std::move(want);
    reqs.push_back(std::move(q));
  }
  if (o.progress)
    std::fprintf(stderr, "stic describe: %lld images (%lld records) in this shard, %lld records already done, %zu images to describe\n",
                 static_cast<long long>(res.images), static_cast<long long>(res.records),
                 static_cast<long long>(res.resumed), reqs.size());

  if (!reqs.empty()) {
    auto loaded = load_for_inference(o.model, load_options(o.device, o.dtype, o.vision_tower, o.image_backend), o.adapter,
                                     o.progress ? "describe" : "");
    LoadedModel& model = *loaded;
    if (!o.image_mode.empty()) model.set_image_mode(parse_image_mode(o.image_mode));
    for (const auto& [image, prompt] : prompt_of) model.prompt_ids(prompt, o.template_name, true);  // template errors first
    const auto t0 = std::chrono::steady_clock::now();
    int64_t other_failures = 0;
    std::string first_failure;
    res.stats = job.run(model, reqs, [&](GenResult& g) {
      auto p = pending.find(g.id);
      if (p == pending.end()) return;
      if (!g.error.empty() && g.error_kind != "image") {  // not the image's fault: retried by a re-run
        if (other_failures++ == 0) first_failure = g.error;
        return;
      }
      if (!g.error.empty()) ++res.failed;
      else ++res.described;
      for (const std::string& id : p->second) {
        if (!g.error.empty())
          job.write({{"id", id}, {"image", g.id}, {"error", g.error}});
        else
          job.write({{"id", id}, {"image", g.id}, {"prompt", prompt_of[g.id]}, {"description", strip(g.text)},
                     {"finish_reason", g.finish_reason}});
      }
      pending.erase(p);
    }).stats;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (other_failures)
      fail(o.out, ": ", other_failures, " image(s) failed for a reason other than the image (first: ", first_failure,
           "); the descriptions done are kept, re-run to retry");
  }

  // the summary of the whole output file
  int64_t lines = 0, errors = 0, at_limit = 0, chars = 0;
  read_jsonl(
      o.out,
      [&](size_t, const json& j) {
        ++lines;
        if (j.contains("error")) ++errors;
        else {
          chars += static_cast<int64_t>(j.value("description", std::string()).size());
          at_limit += j.value("finish_reason", std::string()) == "length";
        }
      },
      [](size_t, const std::string&) {});
  res.summary = {{"records", lines - errors},
                 {"errors", errors},
                 {"hit_token_limit", at_limit},
                 {"description_chars_mean", lines - errors > 0 ? static_cast<double>(chars) / (lines - errors) : 0.0},
                 {"sampling", {{"temperature", as_written(o.temperature)}, {"top_p", as_written(o.top_p)},
                               {"top_k", o.top_k}, {"max_new_tokens", o.max_new_tokens}, {"seed", o.seed},
                               {"prompt", o.prompt.empty() ? json("drawn per image from the normal set") : json(o.prompt)}}},
                 {"model", o.model},
                 {"adapter", o.adapter},
                 {"this_run", {{"images", res.images}, {"records", res.records}, {"resumed", res.resumed},
                               {"described", res.described}, {"failed", res.failed}, {"skipped", res.skipped},
                               {"seconds", res.seconds},
                               {"images_per_s", res.seconds > 0 ? (res.described + res.failed) / res.seconds : 0.0}}}};
  write_file_atomic(o.out + ".summary.json", res.summary.dump(1) + "\n");
  if (!o.stats.empty()) {
    nlohmann::json sj = engine_stats_json(res.stats);
    sj["batch_size"] = o.batch_size;
    sj["images"] = res.described;
    sj["images_per_s"] = res.seconds > 0 ? res.described / res.seconds : 0.0;
    write_file_atomic(o.stats, sj.dump(1) + "\n");
  }
  return res;
}

}  // namespace stic
