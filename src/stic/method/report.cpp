// stic/method/report.cpp — see report.h.
#include "stic/method/report.h"

#include "stic/method/pipeline.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/svg_plot.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

using LossCurve = PlotSeries;

// "a, b, c" or "none"
std::string comma_list(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? std::string("none") : s;
}

std::string loss_svg(const std::vector<LossCurve>& curves) {
  PlotOptions o;
  o.y_label = "training loss";
  o.half_units_from_zero = true;
  return line_plot_svg(curves, o);
}

std::vector<std::pair<double, double>> read_loss(const std::string& metrics, double offset) {
  std::vector<std::pair<double, double>> pts;
  if (!file_exists(metrics)) return pts;
  read_jsonl(
      metrics,
      [&](size_t, const json& j) {
        if (j.contains("step") && j.contains("loss") && j["loss"].is_number())
          pts.emplace_back(offset + j["step"].get<double>(), j["loss"].get<double>());
      },
      [](size_t, const std::string&) {});
  return pts;
}

// STIC against the base model: one row per model evaluated (base, + stage 1, + stage 2, each
// with and without describe-and-respond), the ground-truth columns.
struct SticSection {
  std::string md, html;
};
SticSection stic_section(const Recipe& r, const std::string& wd, const json& base) {
  SticSection out;
  if (!r.stic() || !file_exists(wd + "/eval_stage1/summary.json")) return out;
  auto at = [](const json& S, std::initializer_list<const char*> path) {
    const json* p = &S;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return std::string("-");
      p = &(*p)[k];
    }
    return p->is_number() ? fmt("%.1f", 100 * p->get<double>()) : std::string("-");
  };
  std::vector<std::string> cols = {"precision", "recall", "CHAIR_i", "CHAIR_s", "colour", "size", "position"};
  std::vector<std::string> tasks;
  if (base.contains("vqa"))
    for (auto& [k, v] : base["vqa"].items()) tasks.push_back(k);
  auto row = [&](const json& S) {
    std::vector<std::string> v = {at(S, {"descriptions", "precision"}), at(S, {"descriptions", "recall"}),
                                  at(S, {"descriptions", "chair_i"}), at(S, {"descriptions", "chair_s"})};
    for (const char* a : {"color", "size", "position"}) v.push_back(at(S, {"descriptions", "attribute_accuracy", a, "accuracy"}));
    for (auto& t : tasks) v.push_back(at(S, {"vqa", t.c_str(), "accuracy"}));
    return v;
  };
  for (auto& t : tasks) cols.push_back("VQA " + t);
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  std::string tables;  // links to the full tables
  for (const auto& [name, dir] : std::vector<std::pair<std::string, std::string>>{
           {"base", "eval"}, {"base + DaR", "eval_dar"}, {"+ stage 1 (DPO)", "eval_stage1"},
           {"+ stage 1, round 2", "eval_round2"}, {"+ stage 1, round 3", "eval_round3"},
           {"+ stage 1 + DaR", "eval_stage1_dar"}, {"+ stage 2 (infused SFT)", "eval_stage2"},
           {"+ stage 2 + DaR", "eval_stage2_dar"}}) {
    const std::string p = wd + "/" + dir + "/summary.json";
    if (!file_exists(p)) continue;
    rows.emplace_back(name, row(dir == "eval" ? base : json::parse(read_text_file(p))));
    tables += (tables.empty() ? "" : ", ") + str_cat("[", dir, "/summary.md](", dir, "/summary.md)");
  }
  std::string quality;
  if (file_exists(wd + "/pref/quality/summary.md")) quality = read_text_file(wd + "/pref/quality/summary.md");
  std::error_code ec;
  fs::copy_file(wd + "/dpo/dpo.svg", wd + "/report/dpo.svg", fs::copy_options::overwrite_existing, ec);
  const char* intro =
      "The base model described the unlabeled pool's images (stic generate-pref: the step-by-step prompt for the "
      "preferred answer; a hallucination prompt or a corrupted image for the dispreferred one), and learned from "
      "those pairs with DPO + alpha * NLL of the preferred answer (stic train-dpo, a LoRA adapter). "
      "Percentages on the held-out images; CHAIR: lower is better.";
  const std::string stage2_text =
      r.stage2() ? str_cat("Stage 2: the stage-1 model described the stage-2 pool's images (stic describe), the descriptions "
                           "were infused into that pool's instruction records (stic infuse) and the stage-1 adapter "
                           "continued on them (stic train-sft --adapter, ", r.sft2.train.max_steps, " steps, lr ",
                           r.sft2.train.lr, ").")
                 : std::string();
  const std::string dar_text =
      r.eval_dar ? std::string("DaR (describe-and-respond): the model first describes each image (greedy, \"Detail the "
                               "composition and subjects within the frame.\"), then answers with its description "
                               "infused into the question.")
                 : std::string();
  std::ostringstream md, h;
  md << "## STIC: self-training on the unlabeled images\n\n" << intro << " " << r.dpo.train.max_steps
     << " DPO steps, LoRA r " << r.dpo.lora_r << ", beta " << r.dpo.beta << ", alpha " << r.dpo.alpha << " ("
     << r.dpo.alpha_norm << ").";
  if (!stage2_text.empty()) md << " " << stage2_text;
  if (!dar_text.empty()) md << " " << dar_text;
  md << "\n\n| model |";
  for (auto& c : cols) md << " " << c << " |";
  md << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) md << "---|";
  md << "\n";
  for (auto& [name, v] : rows) {
    md << "| " << name << " |";
    for (auto& x : v) md << " " << x << " |";
    md << "\n";
  }
  md << "\nFull tables: " << tables << ".\n\n";
  if (!quality.empty())
    md << "### The self-built preference pairs against the ground truth\n\nHow often the preferred answer hallucinates "
          "fewer objects than the dispreferred one, by how the dispreferred one was made:\n\n"
       << quality.substr(quality.find('\n') + 1) << "\n";
  md << "### DPO training\n\n![DPO loss, reward margins and accuracies](report/dpo.svg)\n\n";
  h << "<h2>STIC: self-training on the unlabeled images</h2>\n<p>" << html_escape(intro) << "</p>\n";
  if (!stage2_text.empty()) h << "<p>" << html_escape(stage2_text) << "</p>\n";
  if (!dar_text.empty()) h << "<p>" << html_escape(dar_text) << "</p>\n";
  h << "<table><tr><th>model</th>";
  for (auto& c : cols) h << "<th>" << html_escape(c) << "</th>";
  h << "</tr>\n";
  for (auto& [name, v] : rows) {
    h << "<tr><td>" << html_escape(name) << "</td>";
    for (auto& x : v) h << "<td>" << x << "</td>";
    h << "</tr>\n";
  }
  h << "</table>\n";
  if (!quality.empty()) {
    h << "<h3>The self-built preference pairs against the ground truth</h3>\n<table>";
    std::istringstream in(quality);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("| ", 0) != 0) continue;
      h << "<tr>";
      size_t a = 2;
      for (size_t b; (b = line.find(" | ", a)) != std::string::npos; a = b + 3) h << "<td>" << html_escape(line.substr(a, b - a)) << "</td>";
      h << "</tr>\n";
    }
    h << "</table>\n";
  }
  h << "<h3>DPO training</h3>\n<img src=\"report/dpo.svg\" alt=\"DPO loss, reward margins and accuracies\">\n";
  out.md = md.str();
  out.html = h.str();
  return out;
}

}  // namespace

std::string write_report(const Recipe& r, const std::string& workdir) {
  const std::string wd = workdir, world = wd + "/world", evald = wd + "/eval";
  const std::string summary_path = evald + "/summary.json";
  if (!file_exists(summary_path)) fail(summary_path, ": missing (the eval stage has not finished)");
  const json S = json::parse(read_text_file(summary_path));
  fs::create_directories(wd + "/report");

  // loss plot
  std::vector<LossCurve> curves;  // base first (the report quotes curves[0]); steps run on across stages
  const double p_steps = static_cast<double>(r.pretrain.max_steps);
  curves.push_back({"base model", "#1f77b4", read_loss(wd + "/base/metrics.jsonl", p_steps)});
  if (r.instruct.max_steps > 0)
    curves.push_back({"instruction tuning", "#d62728",
                      read_loss(wd + "/instruct/metrics.jsonl", p_steps + static_cast<double>(r.base.max_steps))});
  if (r.pretrain.max_steps > 0)
    curves.push_back({"pretraining (grounded captions)", "#2ca02c", read_loss(wd + "/pretrain/metrics.jsonl", 0)});
  if (r.stage2())  // STIC stage 2's SFT on the infused records, after the base steps
    curves.push_back({"STIC stage 2 (infused SFT, LoRA)", "#ff7f0e",
                      read_loss(wd + "/sft2/metrics.jsonl", p_steps + static_cast<double>(r.base.max_steps))});
  if (r.vision.max_steps > 0)  // its own steps (before pretraining), its own loss
    curves.push_back({"vision tower alone", "#9467bd", read_loss(wd + "/vision/metrics.jsonl", 0)});
  write_file_atomic(wd + "/report/loss.svg", loss_svg(curves));

  // timings
  json timings = file_exists(wd + "/timings.json") ? json::parse(read_text_file(wd + "/timings.json")) : json::object();

  // examples: the first descriptions of the eval set, with the truth
  std::map<std::string, std::string> truth;
  if (file_exists(world + "/gt/descriptions.jsonl"))
    read_jsonl(world + "/gt/descriptions.jsonl",
               [&](size_t, const json& j) { truth[j.value("image", std::string())] = j.value("description", std::string()); },
               [](size_t, const std::string&) {});
  // image -> the description after STIC stage 1 / stage 2
  std::map<std::string, std::string> stage1_text, stage2_text;
  for (auto [dir, m] : {std::pair{"eval_stage1", &stage1_text}, std::pair{"eval_stage2", &stage2_text}})
    if (file_exists(wd + "/" + dir + "/per_item.jsonl"))
      read_jsonl(
          wd + "/" + dir + "/per_item.jsonl",
          [&](size_t, const json& j) {
            if (j.value("type", std::string()) == "describe") (*m)[j.value("image", std::string())] = j.value("text", std::string());
          },
          [](size_t, const std::string&) {});
  struct Example {
    std::string image, text, truth, png;
    std::vector<std::string> halluc, missed;
  };
  std::vector<Example> ex;
  read_jsonl(
      evald + "/per_item.jsonl",
      [&](size_t, const json& j) {
        if (static_cast<int>(ex.size()) >= r.report_examples || j.value("type", std::string()) != "describe") return;
        Example e;
        e.image = j.value("image", std::string());
        e.text = j.value("text", std::string());
        e.truth = truth.count(e.image) ? truth[e.image] : "";
        if (j.contains("hallucinated")) e.halluc = j["hallucinated"].get<std::vector<std::string>>();
        if (j.contains("missed")) e.missed = j["missed"].get<std::vector<std::string>>();
        e.png = "report/" + fs::path(e.image).filename().string();
        std::error_code ec;
        fs::copy_file(world + "/images/" + e.image, wd + "/" + e.png, fs::copy_options::overwrite_existing, ec);
        ex.push_back(e);
      },
      [](size_t, const std::string&) {});

  auto pct = [](const json& v) { return v.is_number() ? fmt("%.1f", 100 * v.get<double>()) : std::string("-"); };
  auto get = [&](std::initializer_list<const char*> path) {
    const json* p = &S;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return json();
      p = &(*p)[k];
    }
    return *p;
  };
  auto last_loss = [](const LossCurve& c) { return c.pts.empty() ? std::string("-") : fmt("%.3f", c.pts.back().second); };

  std::ostringstream md;
  md << "# stic report: " << r.name << "\n\n";
  md << "World `" << r.world_preset << "` (seed " << r.world_seed << "), a tiny LLaVA trained from scratch on it (";
  if (r.vision.max_steps > 0)
    md << r.vision.max_steps << " steps of the vision tower alone on the scene graphs, "
       << (r.pretrain.freeze_vision && r.base.freeze_vision ? "then kept frozen; " : "then ");
  if (r.pretrain.max_steps > 0) md << r.pretrain.max_steps << " pretraining steps on grounded captions, then ";
  md << r.base.max_steps << " full-parameter steps on the base data";
  if (r.instruct.max_steps > 0) md << ", then " << r.instruct.max_steps << " on the stage-2 instruction data";
  md << "), evaluated on the held-out images against exact ground truth (docs/world.md).\n\n";
  md << "## Ground-truth metrics\n\n";
  md << "| metric | value (%) |\n|---|---|\n";
  md << "| object precision | " << pct(get({"descriptions", "precision"})) << " |\n";
  md << "| object recall | " << pct(get({"descriptions", "recall"})) << " |\n";
  md << "| CHAIR_i (hallucinated mentions) | " << pct(get({"descriptions", "chair_i"})) << " |\n";
  md << "| CHAIR_s (descriptions with a hallucination) | " << pct(get({"descriptions", "chair_s"})) << " |\n";
  for (const char* a : {"color", "size", "position"})
    md << "| " << a << " accuracy (described objects) | "
       << pct(get({"descriptions", "attribute_accuracy", a, "accuracy"})) << " |\n";
  if (S.contains("vqa"))
    for (auto& [k, v] : S["vqa"].items()) md << "| VQA " << k << " accuracy | " << pct(v["accuracy"]) << " |\n";
  if (S.contains("pope"))
    for (auto& [k, v] : S["pope"].items())
      md << "| POPE " << k << " accuracy / F1 / yes-ratio | " << pct(v["accuracy"]) << " / " << pct(v["f1"]) << " / "
         << pct(v["yes_ratio"]) << " |\n";
  md << "\nFull table: [eval/summary.md](eval/summary.md); per request: [eval/per_item.jsonl](eval/per_item.jsonl).\n\n";
  const SticSection stic = stic_section(r, wd, S);
  md << stic.md;
  md << "## Training\n\n![training loss](report/loss.svg)\n\n";
  md << "Final logged loss: base " << last_loss(curves[0]);
  if (r.instruct.max_steps > 0 && curves.size() > 1) md << ", instruction tuning " << last_loss(curves[1]);
  md << ".\n\n";
  if (file_exists(wd + "/vision/metrics.jsonl")) {  // the vision stage's last held-out accuracy
    json last;
    read_jsonl(wd + "/vision/metrics.jsonl", [&](size_t, const json& j) { if (j.contains("eval_shape_acc")) last = j; },
               [](size_t, const std::string&) {});
    if (!last.is_null())
      md << "Vision tower after its own stage (step " << last.value("step", 0) << "): held-out shape accuracy "
         << fmt("%.1f", 100 * last.value("eval_shape_acc", 0.0)) << "%, colour accuracy "
         << fmt("%.1f", 100 * last.value("eval_color_acc", 0.0)) << "% at the objects of the eval images.\n\n";
  }
  // does the model look at the image? held-out loss with the right vs a mismatched image
  std::vector<std::vector<std::string>> gain_rows;  // stage, step, loss, loss with another image, gain
  for (const char* st : {"pretrain", "base", "instruct"})
    if (file_exists(wd + "/" + st + "/metrics.jsonl"))
      read_jsonl(
          wd + "/" + st + "/metrics.jsonl",
          [&](size_t, const json& j) {
            if (!j.contains("eval_loss") || !j["eval_loss"].is_number()) return;
            gain_rows.push_back({st, std::to_string(j.value("step", 0)), fmt("%.4f", j["eval_loss"].get<double>()),
                                 fmt("%.4f", j.value("eval_loss_other_image", 0.0)),
                                 fmt("%.4f", j.value("eval_image_gain", 0.0))});
          },
          [](size_t, const std::string&) {});
  const char* const gain_intro =
      "Does the model look at the image? Held-out loss with each record's own image and with another record's "
      "image; the difference, the image gain in nats per answer token, is ~0 for a model that answers from "
      "language priors alone.";
  if (!gain_rows.empty()) {
    md << gain_intro << "\n\n| stage | step | held-out loss | with another image | image gain |\n|---|---|---|---|---|\n";
    for (const auto& row : gain_rows) {
      for (const auto& c : row) md << "| " << c << " ";
      md << "|\n";
    }
    md << "\n";
  }
  md << "## Time per stage\n\n| stage | seconds |\n|---|---|\n";
  for (auto& s : stage_order())
    if (timings.contains(s)) md << "| " << s << " | " << fmt("%.1f", timings[s].get<double>()) << " |\n";
  md << "\n## Examples (held-out images)\n\n";
  for (auto& e : ex) {
    md << "<img src=\"" << e.png << "\" width=\"192\" style=\"image-rendering: pixelated\" alt=\"" << e.image
       << "\">\n\n";
    md << "- **model:** " << e.text << "\n";
    if (stage1_text.count(e.image)) md << "- **after STIC stage 1:** " << stage1_text[e.image] << "\n";
    if (stage2_text.count(e.image)) md << "- **after STIC stage 2:** " << stage2_text[e.image] << "\n";
    md << "- **truth:** " << e.truth << "\n";
    md << "- invented: " << comma_list(e.halluc) << "; missed: " << comma_list(e.missed) << "\n\n";
  }
  write_file_atomic(wd + "/report.md", md.str());

  // the same as HTML (self-contained apart from the images and the plot)
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>stic report: " << html_escape(r.name)
    << "</title><style>body{font-family:sans-serif;max-width:900px;margin:2em auto}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:3px 8px}img.px{image-rendering:pixelated;width:192px;height:192px;flex:none}"
       ".ex{display:flex;gap:1em;margin:1em 0}</style></head><body>\n";
  h << "<h1>stic report: " << html_escape(r.name) << "</h1>\n<h2>Ground-truth metrics</h2>\n<table>"
    << "<tr><th>metric</th><th>value (%)</th></tr>\n";
  {
    std::istringstream in(md.str());
    std::string line;
    bool in_table = false;
    while (std::getline(in, line)) {
      if (line.rfind("| metric", 0) == 0) { in_table = true; continue; }
      if (!in_table) continue;
      if (line.rfind("|---", 0) == 0) continue;
      if (line.rfind("| ", 0) != 0) break;
      const auto mid = line.rfind(" | ", line.size() - 3);
      h << "<tr><td>" << html_escape(line.substr(2, mid - 2)) << "</td><td>"
        << html_escape(line.substr(mid + 3, line.size() - mid - 5)) << "</td></tr>\n";
    }
  }
  h << "</table>\n" << stic.html << "<h2>Training</h2>\n<img src=\"report/loss.svg\" alt=\"training loss\">\n";
  if (!gain_rows.empty()) {
    h << "<p>" << gain_intro << "</p>\n<table><tr><th>stage</th><th>step</th><th>held-out loss</th><th>with another "
         "image</th><th>image gain</th></tr>\n";
    for (const auto& row : gain_rows) {
      h << "<tr>";
      for (const auto& c : row) h << "<td>" << html_escape(c) << "</td>";
      h << "</tr>\n";
    }
    h << "</table>\n";
  }
  h << "<h2>Time per stage</h2><table>";
  for (auto& s : stage_order())
    if (timings.contains(s)) h << "<tr><td>" << s << "</td><td>" << fmt("%.1f", timings[s].get<double>()) << " s</td></tr>";
  h << "</table>\n<h2>Examples (held-out images)</h2>\n";
  for (auto& e : ex) {
    h << "<div class=\"ex\"><img class=\"px\" src=\"" << e.png << "\"><div><p><b>model:</b> " << html_escape(e.text)
      << "</p>";
    if (stage1_text.count(e.image)) h << "<p><b>after STIC stage 1:</b> " << html_escape(stage1_text[e.image]) << "</p>";
    if (stage2_text.count(e.image)) h << "<p><b>after STIC stage 2:</b> " << html_escape(stage2_text[e.image]) << "</p>";
    h << "<p><b>truth:</b> " << html_escape(e.truth) << "</p><p>invented: " << html_escape(comma_list(e.halluc))
      << "; missed: " << html_escape(comma_list(e.missed)) << "</p></div></div>\n";
  }
  h << "</body></html>\n";
  write_file_atomic(wd + "/report.html", h.str());
  return wd + "/report.md";
}

}  // namespace stic

namespace stic {
namespace {

// one cell of the benchmark table: the metric (summary.json holds percentages) or "-"
std::string metric_cell(const json& S, const char* key) {
  if (!S.contains("metrics") || !S["metrics"].contains(key) || !S["metrics"][key].is_number()) return "-";
  return fmt("%.1f", S["metrics"][key].get<double>());
}

// the columns a benchmark contributes: (header, metrics key)
std::vector<std::pair<std::string, const char*>> bench_columns(const std::string& name) {
  if (name == "pope") return {{"POPE acc", "accuracy"}, {"POPE F1", "f1"}, {"POPE yes %", "yes_ratio"}};
  if (name == "scienceqa") return {{"SQA-IMG", "img_accuracy"}, {"SQA all", "accuracy"}};
  if (name == "textvqa") return {{"TextVQA", "accuracy"}};
  if (name == "mmbench") return {{"MMBench", "accuracy"}};
  return {};  // llava-bench, mm-vet: judged outside (answers.jsonl)
}

std::string md_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream md;
  md << "|";
  for (auto& h : head) md << " " << h << " |";
  md << "\n|";
  for (size_t i = 0; i < head.size(); ++i) md << "---|";
  md << "\n";
  for (auto& r : rows) {
    md << "|";
    for (auto& c : r) md << " " << c << " |";
    md << "\n";
  }
  return md.str();
}

std::string html_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream h;
  h << "<table><tr>";
  for (auto& c : head) h << "<th>" << html_escape(c) << "</th>";
  h << "</tr>\n";
  for (auto& r : rows) {
    h << "<tr>";
    for (auto& c : r) h << "<td>" << html_escape(c) << "</td>";
    h << "</tr>\n";
  }
  h << "</table>\n";
  return h.str();
}

json read_json_or_null(const std::string& path) {
  if (!file_exists(path)) return json();
  try {
    return json::parse(read_text_file(path));
  } catch (const std::exception&) {
    return json();
  }
}

}  // namespace

std::string write_bench_report(const Recipe& r, const std::string& workdir) {
  const std::string wd = workdir;
  fs::create_directories(wd + "/report");
  const json timings = read_json_or_null(wd + "/timings.json");
  std::ostringstream md, h;
  md << "# stic report: " << r.name << "\n\nSTIC on `" << r.model_path << "` (" << r.device << ", " << r.dtype << ").\n\n";
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>stic report: " << html_escape(r.name)
    << "</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;"
       "margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px}pre{background:#f6f6f6;padding:0.5em}</style></head>"
       "<body>\n<h1>stic report: "
    << html_escape(r.name) << "</h1>\n<p>STIC on <code>" << html_escape(r.model_path) << "</code> (" << r.device << ", "
    << r.dtype << ").</p>\n";

  // the benchmark table
  if (!r.benchmarks.empty()) {
    std::vector<std::string> head = {"model"};
    for (const auto& b : r.benchmarks)
      for (const auto& [col, key] : bench_columns(b.name)) head.push_back(col);
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, dir] : std::vector<std::pair<std::string, std::string>>{
             {"base", "eval"}, {"base + DaR", "eval_dar"}, {"+ stage 1 (DPO)", "eval_stage1"},
             {"+ stage 1, round 2", "eval_round2"}, {"+ stage 1, round 3", "eval_round3"},
             {"+ stage 1 + DaR", "eval_stage1_dar"}, {"+ stage 2 (infused SFT)", "eval_stage2"},
             {"+ stage 2 + DaR", "eval_stage2_dar"}}) {
      if (!dir_exists(wd + "/" + dir)) continue;
      std::vector<std::string> row = {name};
      for (const auto& b : r.benchmarks) {
        const json S = read_json_or_null(wd + "/" + dir + "/" + b.name + "/summary.json");
        for (const auto& [col, key] : bench_columns(b.name)) row.push_back(S.is_null() ? "-" : metric_cell(S, key));
      }
      rows.push_back(row);
    }
    const char* intro = "In %, scored by the benchmarks' own rules (stic eval); every table per benchmark and model is in "
                        "WORKDIR/EVAL_STAGE/BENCHMARK/summary.md. LLaVA-Bench and MM-Vet answers are judged outside "
                        "(answers.jsonl in LLaVA's layout).";
    md << "## Benchmarks\n\n" << intro << "\n\n" << md_table(head, rows) << "\n";
    h << "<h2>Benchmarks</h2>\n<p>" << html_escape(intro) << "</p>\n" << html_table(head, rows);
  }

  // the self-built preference data
  const json ps = read_json_or_null(wd + "/pref/pairs.jsonl.summary.json");
  if (!ps.is_null()) {
    md << "## Stage-1 preference data\n\n`pref/pairs.jsonl` (its summary, `pref/pairs.jsonl.summary.json`):\n\n```json\n"
       << ps.dump(1) << "\n```\n\n";
    h << "<h2>Stage-1 preference data</h2>\n<pre>" << html_escape(ps.dump(1)) << "</pre>\n";
  }
  std::error_code ec;
  if (file_exists(wd + "/dpo/dpo.svg")) {
    fs::copy_file(wd + "/dpo/dpo.svg", wd + "/report/dpo.svg", fs::copy_options::overwrite_existing, ec);
    md << "## DPO training\n\n![DPO loss, reward margins and accuracies](report/dpo.svg)\n\n";
    h << "<h2>DPO training</h2>\n<img src=\"report/dpo.svg\" alt=\"DPO loss, reward margins and accuracies\">\n";
  }
  const json is = read_json_or_null(wd + "/infuse/stage2_infused.json.summary.json");
  if (r.stage2() && file_exists(wd + "/sft2/metrics.jsonl")) {
    write_file_atomic(wd + "/report/loss.svg",
                      loss_svg({{"STIC stage 2 (infused SFT, LoRA)", "#ff7f0e", read_loss(wd + "/sft2/metrics.jsonl", 0)}}));
    md << "## Stage 2\n\n";
    h << "<h2>Stage 2</h2>\n";
    if (!is.is_null()) {
      const std::string t = str_cat(is.value("infused", int64_t{0}), " of ", is.value("records", int64_t{0}),
                                    " records infused with the stage-1 model's descriptions (infuse/stage2_infused.json).");
      md << t << "\n\n";
      h << "<p>" << html_escape(t) << "</p>\n";
    }
    md << "![stage-2 training loss](report/loss.svg)\n\n";
    h << "<img src=\"report/loss.svg\" alt=\"stage-2 training loss\">\n";
  }

  // time per stage
  std::vector<std::vector<std::string>> trows;
  for (auto& s : stage_order())
    if (timings.is_object() && timings.contains(s)) trows.push_back({s, fmt("%.1f", timings[s].get<double>())});
  md << "## Time per stage\n\n" << md_table({"stage", "seconds"}, trows) << "\n";
  h << "<h2>Time per stage</h2>\n" << html_table({"stage", "seconds"}, trows) << "</body></html>\n";
  write_file_atomic(wd + "/report.md", md.str());
  write_file_atomic(wd + "/report.html", h.str());
  return wd + "/report.md";
}

}  // namespace stic
