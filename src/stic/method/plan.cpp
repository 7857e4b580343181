// stic/method/plan.cpp — see plan.h.
#include "stic/method/plan.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include "stic/method/pools.h"
#include "stic/model/config.h"
#include "stic/score/benchmark.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"
#include "stic/world/world.h"

namespace fs = std::filesystem;

namespace stic {
namespace {

// Measured at LLaVA-1.6-Mistral-7B shape, bf16 (7.24e9 language-model parameters), bench/RESULTS.md:
//   prefill: seconds per prompt position, requests prefilled one at a time (anyres images);
//   decode: seconds per generated token with the engine's slots full;
//   dpo: seconds per position of a pair (both sides; policy, backward, reference forward);
//   sft: seconds per trained position (LoRA r 128, gradient checkpointing).
struct CardRates {
  const char* card;
  double prefill_s_per_pos, decode_s_per_token, dpo_s_per_pos, sft_s_per_pos;
  const char* source;
};
constexpr double kRatesLmParams = 7.24e9;
const CardRates kRates[] = {
    // generate-pref, 128 slots: prefill 11.1 s / 251,755 positions, decode 23 ms per step of 128
    // sequences; train-dpo 4 pairs/step 7168 positions/s; train-sft batch 8 4841 positions/s
    {"H200", 11.1 / 251755, 0.023 / 128, 1.0 / 7168, 1.0 / 4841,
     "H200: generate-pref 2026-12-04, train-dpo 2026-12-04, train-sft 2026-11-27"},
    // describe, 64 slots: prefill 8.0 s / 198k positions, decode 8.2 s / (399 x 64) tokens; the
    // training rates are the H200's (same bf16 peak; the training steps are compute-bound)
    {"H100", 8.0 / 198000, 8.2 / (399.0 * 64), 1.0 / 7168, 1.0 / 4841,
     "H100: describe 2026-12-05; training rates from the H200 (same bf16 peak)"},
};

// the positions an image takes in a prompt, by image mode (anyres: a 640x480 photo on a 672x672
// grid, as the benchmark images; an upper bound for COCO's sizes)
int64_t image_positions(const std::string& mode) { return mode == "anyres" ? 2928 : 576; }

std::string human_seconds(double s) {
  char b[64];
  if (s < 120) std::snprintf(b, sizeof b, "%.0f s", s);
  else if (s < 7200) std::snprintf(b, sizeof b, "%.1f min", s / 60);
  else std::snprintf(b, sizeof b, "%.2f h", s / 3600);
  return b;
}

std::string detect_card(const std::string& device) {
  if (device.rfind("cuda", 0) != 0) return "";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null", "r"), pclose);
  if (!p) return "";
  char buf[256] = {0};
  if (!std::fgets(buf, sizeof buf, p.get())) return "";
  return strip(buf);
}

struct Checker {
  std::ostringstream out;
  int problems = 0;
  void ok(const std::string& what, const std::string& detail) { out << "  ok    " << what << ": " << detail << "\n"; }
  void bad(const std::string& what, const std::string& detail) {
    out << "  FAIL  " << what << ": " << detail << "\n";
    ++problems;
  }
  void warn(const std::string& what, const std::string& detail) { out << "  warn  " << what << ": " << detail << "\n"; }
};

// images named relative to `dir` (or absolute) that are not regular files: count and the first three
std::pair<int64_t, std::string> missing_files(const std::vector<std::string>& names, const std::string& dir) {
  int64_t n = 0;
  std::string first;
  for (const auto& s : names) {
    const std::string path = fs::path(s).is_relative() && !dir.empty() ? (fs::path(dir) / s).string() : s;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) continue;
    if (++n <= 3) first += (first.empty() ? "" : ", ") + path;
  }
  return {n, first};
}

}  // namespace

PlanResult plan_pipeline(const Recipe& r, const PipelineOptions& o, const PlanOptions& po) {
  Checker ck;
  PlanResult res;
  ck.out << "stic pipeline --dry-run: recipe " << r.path << " (" << r.name << "), work folder " << o.workdir << "\n";
  if (dir_exists(o.workdir))
    ck.out << "  (the work folder exists: stages with a .done marker there are skipped, started ones resume)\n";
  ck.out << "\ninputs:\n";

  // the model and what the estimate scales with
  double lm_params = 0;
  std::string model_mode = "pad";
  if (r.external()) {
    try {
      const LlavaConfig c = load_llava_config(r.model_path);
      const TextConfig& t = c.text;
      const double h = t.hidden_size, q = double(t.num_heads) * t.head_dim, kv = double(t.num_kv_heads) * t.head_dim;
      lm_params = t.num_layers * (h * q + 2 * h * kv + q * h + 3 * h * t.intermediate_size) +
                  double(t.vocab_size) * h * (t.tie_word_embeddings ? 1 : 2);
      model_mode = c.aspect == AspectMode::Anyres ? "anyres" : "pad";
      bool weights = false;
      std::error_code ec;
      for (fs::directory_iterator it(r.model_path, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0) weights = true;
      }
      const bool tok = file_exists(r.model_path + "/tokenizer.json") || file_exists(r.model_path + "/tokenizer.model");
      char b[64];
      std::snprintf(b, sizeof b, "%.2fB", lm_params / 1e9);
      const std::string d = str_cat(c.model_type, ", ", t.arch, ", ", b, " language-model parameters, ", t.num_layers,
                                    " layers, image mode ", model_mode);
      if (!weights) ck.bad("model.path " + r.model_path, d + "; no *.safetensors weights in the folder");
      else if (!tok) ck.bad("model.path " + r.model_path, d + "; no tokenizer.json or tokenizer.model");
      else ck.ok("model.path " + r.model_path, d);
    } catch (const std::exception& e) {
      ck.bad("model.path", e.what());
    }
  } else {
    try {
      const world::Preset& p = world::find_preset(r.world_preset);
      ck.ok("world.preset " + r.world_preset,
            str_cat(p.n_base, " base, ", p.n_unlabeled, " unlabeled, ", p.n_stage2, " stage-2 and ", p.n_eval,
                    " eval images, built by the world stage (no downloads)"));
    } catch (const std::exception& e) {
      ck.bad("world.preset", e.what());
    }
  }

  // stage-1 images
  int64_t pref_images = 0;
  bool sizes_assumed = false;  // an unreadable pool counted at its limit (pref.limit, describe.limit)
  if (r.stic() && r.external()) {
    const std::string what = r.pref.image_list.empty() ? "pref.image_dir " + r.pref.image_dir : "pref.image_list " + r.pref.image_list;
    try {
      const auto all = list_pool_images(r.pref.image_dir, r.pref.image_list);
      std::vector<std::string> kept;
      for (size_t i : pool_sample(all, r.pref.limit, r.pref.seed)) kept.push_back(all[i]);
      pref_images = static_cast<int64_t>(kept.size());
      const auto [missing, first] = missing_files(kept, r.pref.image_dir);
      const std::string d = str_cat(all.size(), " images", r.pref.limit > 0 && r.pref.limit < static_cast<int64_t>(all.size())
                                                                ? str_cat(", a seeded sample of ", kept.size())
                                                                : std::string(), " used");
      if (kept.empty()) ck.bad(what, "no images (.jpg .jpeg .png .bmp .gif)");
      else if (missing) ck.warn(what, str_cat(d, "; ", missing, " listed file(s) missing, skipped by generate-pref: ", first));
      else ck.ok(what, d);
      if (r.pref.limit > static_cast<int64_t>(all.size()))
        ck.warn("pref.limit", str_cat(r.pref.limit, " asked, ", all.size(), " available"));
    } catch (const std::exception& e) {
      ck.bad(what, e.what());
    }
    if (pref_images == 0 && r.pref.limit > 0) {  // sizes (and estimates) as if the folder held them
      pref_images = r.pref.limit;
      sizes_assumed = true;
    }
  } else if (r.stic()) {
    pref_images = world::find_preset(r.world_preset).n_unlabeled;
  }

  // stage-2 records
  int64_t s2_records = 0, s2_images = 0;
  if (r.stage2() && r.external()) {
    try {
      const RecordPool p = sample_records(r.describe.data, r.describe.limit, r.describe.seed, "");
      s2_records = p.kept;
      s2_images = static_cast<int64_t>(p.images.size());
      const auto [missing, first] = missing_files(p.images, r.describe.image_dir);
      const std::string d = str_cat(p.records, " records, ", p.with_image, " with an image",
                                    p.duplicate_ids ? str_cat(" (", p.duplicate_ids, " repeating an earlier id, left out)") : "",
                                    "; ", p.kept, " used (", p.images.size(), " distinct images)");
      if (p.kept == 0) ck.bad("describe.data " + r.describe.data, str_cat(p.records, " records, none with an image"));
      else if (missing)
        ck.warn("describe.data " + r.describe.data,
                str_cat(d, "; ", missing, " image(s) missing under describe.image_dir ", r.describe.image_dir, ": ", first,
                        " (their records are not infused, and the infuse stage stops)"));
      else ck.ok("describe.data " + r.describe.data, d);
    } catch (const std::exception& e) {
      ck.bad("describe.data", e.what());
    }
    if (s2_records == 0 && r.describe.limit > 0) {
      s2_records = s2_images = r.describe.limit;
      sizes_assumed = true;
    }
  } else if (r.stage2()) {
    s2_records = s2_images = world::find_preset(r.world_preset).n_stage2;
  }

  // benchmarks
  struct BenchSize {
    std::string name;
    int64_t questions = 0, images = 0;
    int max_new_tokens = 0;
  };
  std::vector<BenchSize> bench;
  char tmpl[] = "/tmp/stic-dry-run-XXXXXX";
  const char* made = mkdtemp(tmpl);
  const std::string image_cache = made ? std::string(made) : std::string("/tmp/stic-dry-run-images");
  for (const auto& b : r.benchmarks) {
    score::LoadOptions lo;
    lo.benchmark = b.name;
    lo.data = b.data;
    lo.annotations = b.annotations;
    lo.image_dir = b.image_dir;
    if (!b.split.empty()) lo.split = b.split;
    lo.limit = b.limit;
    lo.circular = b.circular;
    lo.image_cache = image_cache;  // MMBench decodes its images here (a temporary folder, removed below)
    try {
      const score::Benchmark B = score::load_benchmark(lo);
      BenchSize s{b.name, static_cast<int64_t>(B.items.size()), 0, b.max_new_tokens ? b.max_new_tokens : B.max_new_tokens};
      std::set<std::string> imgs;
      int64_t errors = 0;
      std::string first;
      for (const auto& it : B.items) {
        if (!it.image.empty()) imgs.insert(it.image);
        if (!it.error.empty() && ++errors == 1) first = it.id + ": " + it.error;
      }
      s.images = static_cast<int64_t>(imgs.size());
      const std::string d = str_cat(B.items.size(), " questions on ", imgs.size(), " images, answers <= ", s.max_new_tokens,
                                    " tokens", B.open_ended ? " (open-ended: judged outside)" : "");
      if (B.items.empty()) ck.bad("benchmarks." + b.name, "no questions in " + b.data);
      else if (errors) ck.warn("benchmarks." + b.name, str_cat(d, "; ", errors, " not askable (first: ", first, ")"));
      else ck.ok("benchmarks." + b.name, d);
      bench.push_back(s);
    } catch (const std::exception& e) {
      ck.bad("benchmarks." + b.name, e.what());
    }
  }
  remove_tree(image_cache);
  if (r.external() && r.benchmarks.empty()) ck.warn("benchmarks", "none: the eval stages do not run");

  // the rates
  std::string card = po.card.empty() ? detect_card(r.device) : po.card;
  const CardRates* rates = nullptr;
  for (const auto& c : kRates)
    if (card.find(c.card) != std::string::npos) rates = &c;
  const double scale = lm_params > 0 ? lm_params / kRatesLmParams : 0;
  const bool estimates = rates && r.external() && scale > 0;

  // the stages
  ck.out << "\nstages:\n";
  struct Row {
    std::string stage, work, estimate;
  };
  std::vector<Row> rows;
  double total = 0;
  auto est = [&](double s) -> std::string {
    if (!estimates) return "-";
    total += s;
    return human_seconds(s);
  };
  // generated answers: at their limit, or --expect-tokens when shorter
  auto answer_tokens = [&](int64_t limit) { return po.expect_tokens > 0 ? std::min<int64_t>(limit, po.expect_tokens) : limit; };
  auto token_note = [&](int64_t limit) {
    return po.expect_tokens > 0 && po.expect_tokens < limit ? str_cat("of ~", po.expect_tokens, " tokens (limit ", limit, ")")
                                                             : str_cat("<= ", limit, " tokens");
  };
  auto gen_time = [&](int64_t requests, int64_t positions_each, int64_t tokens_each) {
    return scale * (double(requests) * positions_each * rates->prefill_s_per_pos +
                    double(requests) * tokens_each * rates->decode_s_per_token);
  };
  const std::string pref_mode = r.pref.image_mode.empty() ? model_mode : r.pref.image_mode;
  const std::string dpo_mode = r.dpo.image_mode.empty() ? model_mode : r.dpo.image_mode;
  const std::string desc_mode = r.describe.image_mode.empty() ? model_mode : r.describe.image_mode;
  const std::string sft_mode = r.sft2.image_mode.empty() ? model_mode : r.sft2.image_mode;
  auto train_steps = [](const TrainStage& t, int64_t examples) -> int64_t {  // the trainer's count (one process)
    if (t.max_steps > 0) return t.max_steps;
    const int64_t batches = (examples + t.batch_size - 1) / t.batch_size;
    const int64_t per_epoch = std::max<int64_t>(1, batches / t.grad_accum);
    return static_cast<int64_t>(std::ceil((t.epochs > 0 ? t.epochs : 1) * double(per_epoch)));
  };
  if (!r.external()) {
    const world::Preset* p = nullptr;
    try {
      p = &world::find_preset(r.world_preset);
    } catch (const std::exception&) {
    }
    rows.push_back({"world", p ? str_cat(p->n_base + p->n_unlabeled + p->n_stage2 + p->n_eval, " images rendered") : "-", "-"});
    if (r.vision.max_steps > 0) rows.push_back({"vision", str_cat(r.vision.max_steps, " steps x ", r.vision.batch_size, " images"), "-"});
    if (r.pretrain.max_steps > 0) rows.push_back({"pretrain", str_cat(r.pretrain.max_steps, " steps x ", r.pretrain.batch_size), "-"});
    rows.push_back({"base", str_cat(r.base.max_steps, " steps x ", r.base.batch_size), "-"});
    if (r.instruct.max_steps > 0) rows.push_back({"instruct", str_cat(r.instruct.max_steps, " steps x ", r.instruct.batch_size), "-"});
  }
  auto eval_row = [&](const std::string& stage, bool dar) {
    if (r.external() && bench.empty()) {
      rows.push_back({stage, "no readable benchmark", "-"});
    } else if (r.external()) {
      int64_t q = 0, imgs = 0;
      double s = 0;
      for (const auto& b : bench) {
        q += b.questions, imgs += b.images;
        // short-answer benchmarks (limit <= 128): ~16 tokens; open-ended ones at their limit
        const int64_t answer = b.max_new_tokens > 128 ? b.max_new_tokens : std::min(16, b.max_new_tokens);
        if (estimates) {
          s += gen_time(b.questions, image_positions(model_mode) + 80 + (dar ? r.eval_dar_max_new_tokens : 0), answer);
          if (dar) s += gen_time(b.images, image_positions(model_mode) + 20, r.eval_dar_max_new_tokens);
        }
      }
      rows.push_back({stage, str_cat(q, " questions", dar ? str_cat(", ", imgs, " images described first (<= ",
                                                                    r.eval_dar_max_new_tokens, " tokens)")
                                                          : std::string()),
                      est(s)});
    } else {
      rows.push_back({stage, str_cat("the world's eval set", dar ? ", described first" : ""), "-"});
    }
  };
  if (!r.external() || !r.benchmarks.empty()) eval_row("eval", false);
  if (r.stic()) {
    for (int round = 1; round <= r.dpo.rounds; ++round) {
      const std::string sfx = round == 1 ? "" : "_round" + std::to_string(round);
      const int64_t pref_pos = image_positions(pref_mode) + 100;
      // the bad-prompt side shares the chosen side's image prefix (its KV is reused): an image
      // computes (2 - p_bad_prompt) prompts' positions on average
      const int64_t pref_tokens = r.pref.ignore_eos ? r.pref.max_new_tokens : answer_tokens(r.pref.max_new_tokens);
      const double pref_s = estimates ? scale * (double(pref_images) * (2 - r.pref.p_bad_prompt) * pref_pos * rates->prefill_s_per_pos +
                                                 2.0 * pref_images * pref_tokens * rates->decode_s_per_token)
                                      : 0;
      rows.push_back({"pref" + sfx,
                      str_cat(pref_images, " images x 2 answers ", r.pref.ignore_eos ? str_cat("of ", pref_tokens, " tokens") : token_note(r.pref.max_new_tokens), " (", pref_mode, ")"),
                      estimates ? est(pref_s) : "-"});
      const int64_t steps = train_steps(r.dpo.train, pref_images);
      const int64_t side = std::min<int64_t>(r.dpo.train.max_length, image_positions(dpo_mode) + 60 + pref_tokens);
      const double pairs_run = double(steps) * r.dpo.train.batch_size * r.dpo.train.grad_accum;
      rows.push_back({"dpo" + sfx,
                      str_cat(steps, " steps x ", r.dpo.train.batch_size * r.dpo.train.grad_accum, " pairs, <= ", side,
                              " positions per side (", dpo_mode, ")"),
                      estimates ? est(scale * pairs_run * 2 * side * rates->dpo_s_per_pos) : "-"});
      if (!r.external() || !r.benchmarks.empty()) eval_row(round == 1 ? "eval_stage1" : "eval" + sfx, false);
    }
  }
  if (r.stage2()) {
    const int64_t desc_tokens = r.describe.ignore_eos ? r.describe.max_new_tokens : answer_tokens(r.describe.max_new_tokens);
    rows.push_back({"describe", str_cat(s2_images, " images, answers ", r.describe.ignore_eos ? str_cat("of ", desc_tokens, " tokens") : token_note(r.describe.max_new_tokens), " (", desc_mode, ")"),
                    estimates ? est(gen_time(s2_images, image_positions(desc_mode) + 20, desc_tokens)) : "-"});
    rows.push_back({"infuse", str_cat(s2_records, " records"), estimates ? est(1) : "-"});
    const int64_t steps = train_steps(r.sft2.train, s2_records);
    const int64_t pos = std::min<int64_t>(r.sft2.train.max_length, image_positions(sft_mode) + desc_tokens + 300);
    const double recs_run = double(steps) * r.sft2.train.batch_size * r.sft2.train.grad_accum;
    rows.push_back({"sft2",
                    str_cat(steps, " steps x ", r.sft2.train.batch_size * r.sft2.train.grad_accum, " records, <= ", pos,
                            " positions each (", sft_mode, ")"),
                    estimates ? est(scale * recs_run * pos * rates->sft_s_per_pos) : "-"});
    if (!r.external() || !r.benchmarks.empty()) eval_row("eval_stage2", false);
  }
  if (r.eval_dar && (!r.external() || !r.benchmarks.empty())) {
    eval_row("eval_dar", true);
    if (r.stic()) eval_row("eval_stage1_dar", true);
    if (r.stage2()) eval_row("eval_stage2_dar", true);
  }
  rows.push_back({"report", "report.md, report.html", "-"});
  size_t w0 = 5, w1 = 4;
  for (auto& row : rows) w0 = std::max(w0, row.stage.size()), w1 = std::max(w1, row.work.size());
  char line[1024];
  std::snprintf(line, sizeof line, "  %-*s  %-*s  %s\n", int(w0), "stage", int(w1), "work", "estimate");
  ck.out << line;
  for (auto& row : rows) {
    std::snprintf(line, sizeof line, "  %-*s  %-*s  %s\n", int(w0), row.stage.c_str(), int(w1), row.work.c_str(),
                  row.estimate.c_str());
    ck.out << line;
  }
  if (sizes_assumed)
    ck.out << "\n(sizes of pools that could not be read are their recipe limits: pref.limit " << r.pref.limit
           << ", describe.limit " << r.describe.limit << " records on as many images)\n";
  if (estimates) {
    char b[64];
    std::snprintf(b, sizeof b, "%.2f", scale);
    ck.out << "\nestimated total: " << human_seconds(total) << " on one " << rates->card << " (rates: " << rates->source
           << "; scaled by " << b << " for this model's size). Generation is counted "
           << (po.expect_tokens > 0 ? str_cat("at ~", po.expect_tokens, " tokens per answer (--expect-tokens)")
                                    : std::string("at its token limits (an upper bound; --expect-tokens N for answers of N)"))
           << "; model loading is not counted.\n";
  } else if (r.external()) {
    ck.out << "\nno estimate: "
           << (card.empty() ? std::string("no card (the recipe's device is ") + r.device + "; give --card H200 or H100)"
                            : "no measured rates for '" + card + "' (measured: H200, H100)")
           << "\n";
  } else {
    ck.out << "\nno estimate for world recipes (their times are in bench/RESULTS.md).\n";
  }
  ck.out << "\n" << (ck.problems ? str_cat(ck.problems, " input problem(s): the run would stop; fix them first.")
                                 : std::string("inputs ok.")) << "\n";
  res.text = ck.out.str();
  res.problems = ck.problems;
  return res;
}

}  // namespace stic
