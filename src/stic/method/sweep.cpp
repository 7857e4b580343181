// stic/method/sweep.cpp — see sweep.h.
#include "stic/method/sweep.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stic/method/pipeline.h"
#include "stic/method/recipe.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

// the stages that train or evaluate the base model: shared by the variants of one seed
const char* const kShared[] = {"world", "vision", "pretrain", "base", "instruct", "eval", "eval_dar"};
// the recipe sections a variant may change
const char* const kSticSections[] = {"pref", "dpo", "describe", "sft2"};

std::string seed_dir(const SweepOptions& o, uint64_t s) { return o.workdir + "/seed" + std::to_string(s); }

std::vector<std::string> with_seed(const SweepOptions& o, uint64_t s, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = o.sets;
  sets.push_back("world.seed=" + std::to_string(s));
  sets.insert(sets.end(), extra.begin(), extra.end());
  return sets;
}

// the recipe without its STIC sections: what the base model depends on
json base_part(const Recipe& r) {
  json j = r.to_json();
  for (const char* k : kSticSections) j.erase(k);
  j["eval"].erase("dar");
  j["eval"].erase("dar_max_new_tokens");
  return j;
}

struct Row {
  std::string label, dir;  // eval folder name
};

// (metric name, how to read it from a world eval summary.json, as a percentage)
struct Metric {
  std::string name;
  double (*get)(const json&);
};
double jget(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return NAN;
    p = &(*p)[k];
  }
  return p->is_number() ? 100.0 * p->get<double>() : NAN;
}
const std::vector<Metric>& metrics() {
  static const std::vector<Metric> m = {
      {"precision", [](const json& j) { return jget(j, {"descriptions", "precision"}); }},
      {"recall", [](const json& j) { return jget(j, {"descriptions", "recall"}); }},
      {"CHAIR_i", [](const json& j) { return jget(j, {"descriptions", "chair_i"}); }},
      {"colour acc", [](const json& j) { return jget(j, {"descriptions", "attribute_accuracy", "color", "accuracy"}); }},
      {"multiple choice", [](const json& j) { return jget(j, {"vqa", "choice", "accuracy"}); }},
      {"POPE F1", [](const json& j) { return jget(j, {"pope", "all", "f1"}); }},
  };
  return m;
}

std::string mean_std(const std::vector<double>& v) {
  std::vector<double> x;
  for (double d : v)
    if (!std::isnan(d)) x.push_back(d);
  if (x.empty()) return "–";
  double m = 0;
  for (double d : x) m += d;
  m /= static_cast<double>(x.size());
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << m;
  if (x.size() > 1) {
    double var = 0;
    for (double d : x) var += (d - m) * (d - m);
    s << " ± " << std::sqrt(var / static_cast<double>(x.size() - 1));  // sample std
  }
  return s.str();
}

}  // namespace

SweepVariant parse_variant(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size())
    fail("--variant '", text, "': expected NAME:section.key=value[,section.key=value] (e.g. no_reg:dpo.alpha=0)");
  SweepVariant v;
  v.name = text.substr(0, colon);
  for (char c : v.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      fail("--variant '", text, "': the name may hold letters, digits, '_' and '-' only");
  if (v.name == "recipe") fail("--variant: 'recipe' names the recipe itself; choose another name");
  for (const auto& s : split_nonempty(text.substr(colon + 1), ',')) v.sets.push_back(strip(s));
  return v;
}

std::vector<SweepVariant> standard_ablations() {
  return {{"no_regulariser", {"dpo.alpha=0"}},
          {"bad_prompt_negatives", {"pref.p_bad_prompt=1"}},
          {"corruption_negatives", {"pref.p_bad_prompt=0"}},
          {"no_negatives", {"dpo.loss_type=sft", "dpo.alpha_norm=mean", "dpo.alpha=1"}},
          {"no_stage2", {"sft2.max_steps=0"}}};
}

std::string run_sweep(const SweepOptions& o) {
  if (o.seeds.empty()) fail("pipeline --seeds: give at least one seed");
  std::map<std::string, int> names;
  for (const auto& v : o.variants)
    if (names[v.name]++) fail("pipeline --variant: the name '", v.name, "' is given twice");
  // check every variant against the recipe before any work
  for (const auto& v : o.variants) {
    const Recipe base = load_recipe(o.recipe, with_seed(o, o.seeds[0]));
    const Recipe var = load_recipe(o.recipe, with_seed(o, o.seeds[0], v.sets));
    if (!var.stic()) fail("pipeline --variant ", v.name, ": the variant runs no STIC stage (dpo.max_steps is 0)");
    const json a = base_part(base), b = base_part(var);
    if (a != b) {
      std::string diff;
      for (auto& [k, val] : b.items())
        if (!a.contains(k) || a[k] != val) diff += (diff.empty() ? "" : ", ") + k;
      fail("pipeline --variant ", v.name, ": changes ", diff,
           "; the variants of a seed share its base model, so a variant may change only pref., dpo., describe. and "
           "sft2. keys");
    }
  }
  for (uint64_t s : o.seeds) {
    const std::string sd = seed_dir(o, s);
    std::fprintf(stderr, "[sweep] seed %llu: the recipe (%s)\n", static_cast<unsigned long long>(s), sd.c_str());
    PipelineOptions po;
    po.workdir = sd;
    po.progress = o.progress;
    run_pipeline(load_recipe(o.recipe, with_seed(o, s)), po);
    for (const auto& v : o.variants) {
      const std::string vd = sd + "/variants/" + v.name;
      std::error_code ec;
      fs::create_directories(vd, ec);
      if (ec) fail(vd, ": cannot create the folder: ", ec.message());
      for (const char* st : kShared) {
        const fs::path link = fs::path(vd) / st;
        if (fs::exists(fs::path(sd) / st) && !fs::exists(fs::symlink_status(link))) {
          fs::create_directory_symlink(fs::path("..") / ".." / st, link, ec);
          if (ec) fail(link.string(), ": cannot link to ", sd, "/", st, ": ", ec.message());
        }
      }
      std::fprintf(stderr, "[sweep] seed %llu: variant %s (%s)\n", static_cast<unsigned long long>(s), v.name.c_str(),
                   vd.c_str());
      po.workdir = vd;
      run_pipeline(load_recipe(o.recipe, with_seed(o, s, v.sets)), po);
    }
  }
  return write_sweep_report(o);
}

std::string write_sweep_report(const SweepOptions& o) {
  std::vector<std::pair<std::string, std::string>> variants = {{"recipe", ""}};  // name, folder below seed{S}
  for (const auto& v : o.variants) variants.push_back({v.name, "/variants/" + v.name});
  const std::vector<Row> rows = {{"base", "eval"},           {"base + DaR", "eval_dar"},
                                 {"+ stage 1", "eval_stage1"}, {"+ stage 1, round 2", "eval_round2"},
                                 {"+ stage 1, round 3", "eval_round3"}, {"+ stage 1 + DaR", "eval_stage1_dar"},
                                 {"+ stage 2", "eval_stage2"}, {"+ stage 2 + DaR", "eval_stage2_dar"}};
  std::ostringstream md;
  json out = {{"recipe", o.recipe}, {"seeds", o.seeds}, {"sets", o.sets}, {"variants", json::object()}};
  md << "# " << fs::path(o.recipe).stem().string() << ": " << o.seeds.size() << " seed(s), " << variants.size()
     << " variant(s)\n\nMean ± sample std over the seeds (";
  for (size_t i = 0; i < o.seeds.size(); ++i) md << (i ? ", " : "") << o.seeds[i];
  md << "), in %, on the world's eval set against its ground truth. Lower CHAIR_i is better. The base rows are "
        "the same model for every variant of a seed.\n\n";
  for (const auto& v : o.variants) {
    md << "- **" << v.name << "**:";
    for (const auto& s : v.sets) md << " `" << s << "`";
    md << "\n";
  }
  md << "\n| variant | model | seeds |";
  for (const auto& m : metrics()) md << " " << m.name << " |";
  md << "\n|---|---|---|";
  for (size_t i = 0; i < metrics().size(); ++i) md << "---|";
  md << "\n";
  for (const auto& [vname, vdir] : variants) {
    json vj = json::object();
    for (const auto& row : rows) {
      std::vector<std::vector<double>> vals(metrics().size());
      int n = 0;
      for (uint64_t s : o.seeds) {
        const std::string p = seed_dir(o, s) + vdir + "/" + row.dir + "/summary.json";
        if (!file_exists(p)) continue;
        json j;
        try {
          j = json::parse(read_text_file(p));
        } catch (const json::exception& e) {
          fail(p, ": not valid JSON: ", e.what());
        }
        ++n;
        for (size_t k = 0; k < metrics().size(); ++k) vals[k].push_back(metrics()[k].get(j));
      }
      if (n == 0) continue;
      md << "| " << vname << " | " << row.label << " | " << n << " |";
      json rj = {{"seeds", n}};
      for (size_t k = 0; k < metrics().size(); ++k) {
        md << " " << mean_std(vals[k]) << " |";
        rj[metrics()[k].name] = vals[k];
      }
      md << "\n";
      vj[row.label] = rj;
    }
    out["variants"][vname] = vj;
  }
  md << "\nEach run's own report: " << o.workdir << "/seed{S}/report.md and " << o.workdir
     << "/seed{S}/variants/NAME/report.md.\n";
  const std::string path = o.workdir + "/compare.md";
  write_file_atomic(path, md.str());
  write_file_atomic(o.workdir + "/compare.json", out.dump(1) + "\n");
  return path;
}

}  // namespace stic
