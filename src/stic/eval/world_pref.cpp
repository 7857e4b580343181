// stic/eval/world_pref.cpp — see world_pref.h.
#include "stic/eval/world_pref.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "stic/io/pref_records.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/world/metrics.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

struct Side {
  int64_t mentions = 0, correct = 0, hallucinated = 0, objects = 0, matched = 0;
  void add(const world::DescriptionScore& s) {
    mentions += s.mentions, correct += s.correct, hallucinated += s.hallucinated;
    objects += s.objects, matched += s.matched_objects;
  }
  json to_json() const {
    return {{"precision", mentions ? static_cast<double>(correct) / mentions : 0.0},
            {"recall", objects ? static_cast<double>(matched) / objects : 0.0},
            {"chair_i", mentions ? static_cast<double>(hallucinated) / mentions : 0.0},
            {"mentions", mentions}};
  }
};

struct KindStats {
  int64_t pairs = 0, chosen_less = 0, equal = 0, chosen_more = 0;
  Side chosen, rejected;
};

json score_json(const world::DescriptionScore& s) {
  return {{"mentions", s.mentions}, {"correct", s.correct}, {"hallucinated", s.hallucinated},
          {"objects", s.objects}, {"matched_objects", s.matched_objects},
          {"hallucinated_items", s.hallucinated_items}};
}

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", 100 * x);
  return b;
}

}  // namespace

WorldPrefResult score_world_pref(const WorldPrefOptions& o) {
  if (!file_exists(o.world + "/world.json"))
    fail(o.world, ": not a stic world (world.json is missing; build one with `stic world --out DIR`)");
  std::map<std::string, world::Scene> scenes;  // by image path (relative to WORLD/images)
  std::map<std::string, std::string> by_file;  // file name -> path ("" when two pools share it)
  for (const char* pool : {"base", "unlabeled", "stage2", "eval"}) {
    const std::string p = o.world + "/gt/" + pool + "_scenes.jsonl";
    if (!file_exists(p)) continue;
    read_jsonl(
        p,
        [&](size_t line, const json& j) {
          world::Scene s = world::scene_from_json(j, str_cat(p, ": line ", line));
          const std::string name = fs::path(s.image).filename().string();
          by_file[name] = by_file.count(name) ? "" : s.image;
          scenes[s.image] = std::move(s);
        },
        [&](size_t, const std::string& msg) { fail(msg); });
  }
  int64_t bad = 0, unknown = 0;
  const auto recs = read_pref_records(o.pairs, [&](size_t, const std::string& where, const std::string& why) {
    if (++bad <= 10) std::fprintf(stderr, "stic eval: %s: %s; skipped\n", where.c_str(), why.c_str());
  });
  std::map<std::string, KindStats> by_kind;
  std::ostringstream per_pair;
  for (const auto& r : recs) {
    const json& j = r.j;
    const std::string image = j.value("image", std::string());
    auto it = scenes.find(image);
    if (it == scenes.end()) {  // pairs made from one pool's folder name the file alone
      auto f = by_file.find(fs::path(image).filename().string());
      if (f != by_file.end() && !f->second.empty()) it = scenes.find(f->second);
    }
    if (it == scenes.end()) {
      ++unknown;
      continue;
    }
    const std::string kind = pref_record_kind(j);
    const auto c = world::score_description(it->second, j["chosen"].back().value("content", std::string()));
    const auto w = world::score_description(it->second, j["rejected"].back().value("content", std::string()));
    for (KindStats* k : {&by_kind[kind], &by_kind["all"]}) {
      ++k->pairs;
      k->chosen_less += c.hallucinated < w.hallucinated;
      k->equal += c.hallucinated == w.hallucinated;
      k->chosen_more += c.hallucinated > w.hallucinated;
      k->chosen.add(c);
      k->rejected.add(w);
    }
    per_pair << json{{"id", pref_record_id(j)}, {"kind", kind}, {"chosen", score_json(c)}, {"rejected", score_json(w)}}
                    .dump(-1, ' ', false, json::error_handler_t::replace)
             << "\n";
  }
  if (!recs.empty() && !by_kind.count("all"))
    fail(o.pairs, ": none of its ", recs.size(), " pairs names an image of the world ", o.world,
         " (images are matched by their path under WORLD/images, e.g. unlabeled/unlabeled_000000.png, or by file name)");
  WorldPrefResult res;
  json& s = res.summary;
  s = {{"pairs", by_kind.count("all") ? by_kind["all"].pairs : 0}, {"unknown_images", unknown}, {"malformed", bad},
       {"by_kind", json::object()}};
  std::ostringstream md;
  md << "## Preference pairs against the ground truth (" << s["pairs"].get<int64_t>() << " pairs)\n\n"
     << "| kind | pairs | chosen hallucinates less | equal | more | chosen precision / recall / CHAIR_i | "
        "rejected precision / recall / CHAIR_i |\n|---|---|---|---|---|---|---|\n";
  for (const auto& [kind, k] : by_kind) {
    const double n = static_cast<double>(std::max<int64_t>(1, k.pairs));
    const json cj = k.chosen.to_json(), rj = k.rejected.to_json();
    s["by_kind"][kind] = {{"pairs", k.pairs}, {"chosen_hallucinates_less", k.chosen_less / n},
                          {"equal", k.equal / n}, {"chosen_hallucinates_more", k.chosen_more / n},
                          {"chosen", cj}, {"rejected", rj}};
    md << "| " << kind << " | " << k.pairs << " | " << pct(k.chosen_less / n) << " | " << pct(k.equal / n) << " | "
       << pct(k.chosen_more / n) << " | " << pct(cj["precision"]) << " / " << pct(cj["recall"]) << " / "
       << pct(cj["chair_i"]) << " | " << pct(rj["precision"]) << " / " << pct(rj["recall"]) << " / "
       << pct(rj["chair_i"]) << " |\n";
  }
  if (unknown) md << "\n" << unknown << " pair(s) name images this world does not have (skipped).\n";
  res.markdown = md.str();
  if (!o.out.empty()) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (ec) fail(o.out, ": cannot create the output folder: ", ec.message());
    write_file_atomic(o.out + "/per_pair.jsonl", per_pair.str());
    write_file_atomic(o.out + "/summary.json", s.dump(1) + "\n");
    write_file_atomic(o.out + "/summary.md", res.markdown);
  }
  return res;
}

}  // namespace stic
