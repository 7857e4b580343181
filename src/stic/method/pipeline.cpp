// stic/method/pipeline.cpp — see pipeline.h.
#include "stic/method/pipeline.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "stic/eval/world_eval.h"
#include "stic/io/distributed.h"
#include "stic/eval/world_pref.h"
#include "stic/method/describe.h"
#include "stic/method/infuse.h"
#include "stic/method/pools.h"
#include "stic/method/prefgen.h"
#include "stic/eval/bench_eval.h"
#include "stic/method/report.h"
#include "stic/method/world_model.h"
#include "stic/train/dpo.h"
#include "stic/train/sft.h"
#include "stic/train/vision.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace stic {
namespace {

// What a stage sees: the recipe, the work folder, the model the previous training stage left,
// its own folder and its log.
struct StageContext {
  const Recipe& r;
  const PipelineOptions& o;
  std::string wd, world, model, dir, log;
  std::string stage1, stage2;  // the STIC adapters on `model` (after the dpo and sft2 stages)
};

// A stage kind, registered once: its name (recipe section, folder and --until value), whether
// the recipe runs it, whether its folder holds the next stage's model, and how it runs — through
// the same options struct and library call as its verb. A started stage resumes: the world
// completes its images, a training stage continues from OUTPUT/latest, eval skips the
// predictions it has.
struct StageKind {
  const char* name;
  bool trains;  // its folder holds the next stage's model
  int adapter;   // its folder holds the STIC stage-1 (1) or stage-2 (2) adapter on the model
  std::function<bool(const Recipe&)> enabled;
  std::function<void(StageContext&)> run;
};

void append_log(const std::string& path, const std::string& text) {
  std::ofstream l(path, std::ios::app);
  l << text;
}

// The settings every training stage shares (train-sft and train-vision take them alike).
TrainConfig stage_train_config(const TrainStage& t, const StageContext& c) {
  TrainConfig tc;
  tc.max_steps = t.max_steps > 0 ? t.max_steps : -1;  // 0 with epochs > 0: the epochs bound the run
  if (t.epochs > 0) tc.epochs = t.epochs;
  tc.batch_size = t.batch_size;
  tc.lr = t.lr;
  tc.warmup_ratio = t.warmup_ratio;
  tc.adam.weight_decay = t.weight_decay;
  tc.max_grad_norm = t.max_grad_norm;
  tc.schedule = t.schedule;
  tc.seed = t.seed;
  tc.log_every = t.log_every;
  tc.save_every = t.save_every;
  tc.progress = c.o.progress;
  // a killed run: continue from its checkpoint (or, killed before its first, start it over)
  tc.resume = file_exists(c.dir + "/latest") || file_exists(c.dir + "/metrics.jsonl");
  tc.grad_accum = t.grad_accum;                  // (train-vision's section has none: 1)
  tc.group_by_length = t.group_by_length == "true";
  tc.sort_within_step = t.group_by_length == "step";
  return tc;
}

// A base-model training stage: train-sft --full on one of the world's data files.
void run_sft_stage(StageContext& c, const TrainStage& t, const std::string& data, const std::string& eval_data) {
  SftRunOptions so;
  so.model = c.model;
  so.output_dir = c.dir;
  so.device = c.r.device;
  so.dtype = c.r.dtype;
  so.image_backend = c.r.image_backend;
  so.train = stage_train_config(t, c);
  so.setup.full = true;
  if (t.freeze_vision) so.setup.mm_vision_tower_lr = 0;
  if (t.freeze_projector) so.setup.mm_projector_lr = 0;
  so.data = c.world + "/data/" + data;
  so.image_dir = c.world + "/images";
  so.max_length = t.max_length;
  so.image_marker = t.image_marker;
  if (file_exists(c.world + "/data/" + eval_data)) {  // held-out loss and image gain, 7 times per stage
    so.eval_data = c.world + "/data/" + eval_data;
    so.eval_every = t.max_steps > 0 ? std::max<int64_t>(1, t.max_steps / 6) : 0;  // by epochs: total / 10
    so.eval_examples = 64;
  }
  const SftRunResult res = run_sft(so);
  append_log(c.log, str_cat("train-sft ", so.data, " -> ", res.weights, ": ", res.train.steps, "/",
                            res.train.total_steps, " steps, last loss ", res.train.last_loss, "; ", res.data_summary,
                            "\n"));
}

// stic eval on each of the recipe's real benchmarks (a recipe on an external model): DIR/NAME/
void run_bench_eval_stage(StageContext& c, const std::string& adapter, bool dar) {
  int64_t failed = 0;
  for (const BenchmarkSpec& b : c.r.benchmarks) {
    BenchEvalOptions o;
    o.data.benchmark = b.name;
    o.data.data = b.data;
    o.data.annotations = b.annotations;
    o.data.image_dir = b.image_dir;
    if (!b.split.empty()) o.data.split = b.split;
    o.data.limit = b.limit;
    o.data.circular = b.circular;
    o.model = c.model;
    o.adapter = adapter;
    o.out = c.dir + "/" + b.name;
    o.device = c.r.device;
    o.dtype = c.r.dtype;
    o.image_backend = c.r.image_backend;
    if (!c.r.eval_template.empty()) o.template_name = c.r.eval_template;
    o.batch_size = c.r.eval_batch_size;
    o.max_new_tokens = b.max_new_tokens;
    o.dar = dar;
    o.dar_max_new_tokens = c.r.eval_dar_max_new_tokens;
    o.progress = c.o.progress;
    const BenchEvalResult res = run_bench_eval(o);
    append_log(c.log, str_cat("eval --benchmark ", b.name, adapter.empty() ? std::string() : " --adapter " + adapter,
                              dar ? " --dar" : "", " -> ", o.out, ": ", res.questions, " questions, ", res.generated,
                              " answered (", res.gen_seconds, " s), ", res.resumed, " resumed, ", res.failed, " failed\n",
                              res.scores.markdown, "\n"));
    failed += res.failed;
  }
  if (failed) fail(c.dir, ": ", failed, " question(s) failed (see above); re-run to retry them");
}

// stic eval --benchmark world of the current model, with `adapter` ("" = none), with DaR or not
void run_eval_stage(StageContext& c, const std::string& adapter, bool dar) {
  if (c.r.external()) return run_bench_eval_stage(c, adapter, dar);
  WorldEvalOptions eo;
  eo.model = c.model;
  eo.adapter = adapter;
  eo.dar = dar;
  eo.dar_max_new_tokens = c.r.eval_dar_max_new_tokens;
  eo.world = c.world;
  eo.out = c.dir;
  eo.batch_size = c.r.eval_batch_size;
  eo.max_new_tokens = c.r.eval_max_new_tokens;
  eo.device = c.r.device;
  eo.dtype = c.r.dtype;
  eo.image_backend = c.r.image_backend;
  eo.progress = c.o.progress;
  const WorldEvalResult res = run_world_eval(eo);
  append_log(c.log, res.scores.markdown());
  if (res.failed) fail(eo.out, ": ", res.failed, " request(s) failed (see above); re-run to retry them");
}

// STIC stage 1, round k: the model (round 1: the base; later: + the newest adapter) builds
// preference pairs from the unlabeled pool (their quality scored against the ground truth)
void run_pref_stage(StageContext& c, int round) {
  PrefGenOptions po;
  po.model = c.model;
  if (round > 1) po.adapter = c.stage1;
  po.device = c.r.device;
  po.dtype = c.r.dtype;
  po.image_backend = c.r.image_backend;
  if (c.r.external()) {  // the recipe's images (a seeded sample of pref.limit of them)
    po.image_dir = c.r.pref.image_dir;
    po.image_list = c.r.pref.image_list;
    if (c.r.pref.limit > 0) {
      const auto all = list_pool_images(c.r.pref.image_dir, c.r.pref.image_list);
      std::string list;
      for (size_t i : pool_sample(all, c.r.pref.limit, c.r.pref.seed)) list += all[i] + "\n";
      fs::create_directories(c.dir);
      po.image_list = c.dir + "/images.txt";
      if (!file_exists(po.image_list)) write_file_atomic(po.image_list, list);
    }
  } else {
    po.image_dir = c.world + "/images";
    po.image_list = c.world + "/data/unlabeled_images.txt";
  }
  if (!c.r.pref.template_name.empty()) po.template_name = c.r.pref.template_name;
  po.image_mode = c.r.pref.image_mode;
  po.ignore_eos = c.r.pref.ignore_eos;
  po.out = c.dir + "/pairs.jsonl";
  po.max_new_tokens = c.r.pref.max_new_tokens;
  po.batch_size = c.r.pref.batch_size;
  po.temperature = static_cast<float>(c.r.pref.temperature);
  po.p_bad_prompt = c.r.pref.p_bad_prompt;
  po.seed = c.r.pref.seed + static_cast<uint64_t>(round - 1);  // new draws each round
  po.progress = c.o.progress;
  const PrefGenResult res = run_generate_pref(po);
  if (c.r.external()) {  // no ground truth: the pairs' own summary
    append_log(c.log, str_cat("generate-pref", round > 1 ? " --adapter " + c.stage1 : std::string(), " -> ", po.out, ": ",
                              res.written, " pairs written, ", res.resumed, " resumed, ", res.skipped, " skipped (",
                              res.seconds, " s)\n"));
    return;
  }
  WorldPrefOptions wo;
  wo.world = c.world;
  wo.pairs = po.out;
  wo.out = c.dir + "/quality";
  const WorldPrefResult q = score_world_pref(wo);
  append_log(c.log, str_cat("generate-pref", round > 1 ? " --adapter " + c.stage1 : std::string(), " -> ", po.out, ": ",
                            res.written, " pairs written, ", res.resumed, " resumed, ", res.skipped, " skipped\n",
                            q.markdown, "\n"));
}

// ... and learns from them: DPO + alpha * NLL with LoRA (round 1: a fresh adapter; later rounds
// continue the newest one; the reference is always the model with the adapter disabled)
void run_dpo_stage(StageContext& c, int round) {
  const DpoStage& d = c.r.dpo;
  DpoRunOptions o;
  o.model = c.model;
  o.data = c.wd + (round == 1 ? std::string("/pref") : "/pref_round" + std::to_string(round)) + "/pairs.jsonl";
  o.image_dir = c.r.external() ? c.r.pref.image_dir : c.world + "/images";
  o.image_mode = d.image_mode;
  if (!d.template_name.empty()) o.dpo.template_name = d.template_name;
  o.setup.gradient_checkpointing = d.train.gradient_checkpointing;
  o.output_dir = c.dir;
  o.device = c.r.device;
  o.dtype = c.r.dtype;
  o.image_backend = c.r.image_backend;
  o.train = stage_train_config(d.train, c);
  if (round > 1) o.setup.adapter = c.stage1;
  o.setup.lora.r = d.lora_r;
  o.setup.lora.alpha = d.lora_alpha;
  o.setup.lora.dropout = 0.0;
  o.dpo.max_length = d.train.max_length;
  o.dpo.loss.beta = d.beta;
  o.dpo.loss.alpha = d.alpha;
  o.dpo.loss.alpha_norm = d.alpha_norm;
  o.dpo.loss.loss_type = d.loss_type;
  const DpoRunResult res = run_dpo(o);
  append_log(c.log, str_cat("train-dpo ", round > 1 ? "--adapter " + c.stage1 + " " : std::string(), o.data, " -> ",
                            res.weights, ": ", res.train.steps, "/", res.train.total_steps, " steps, last loss ",
                            res.train.last_loss, "; ", res.data_summary, "\n"));
}

// the eval stages run: always on the world; on an external model when the recipe names benchmarks
bool evaluates(const Recipe& r) { return !r.external() || !r.benchmarks.empty(); }

// STIC stage 2's instruction records: the world's stage-2 pool, or the recipe's file's records
// with an image (a seeded sample of describe.limit of them; all with 0), written once to
// WORKDIR/describe/records.json
std::string stage2_records(const StageContext& c) {
  if (!c.r.external()) return c.world + "/data/stage2_sft.json";
  const std::string out = c.wd + "/describe/records.json";
  if (!file_exists(out)) {
    fs::create_directories(c.wd + "/describe");
    sample_records(c.r.describe.data, c.r.describe.limit, c.r.describe.seed, out);
  }
  return out;
}
std::string stage2_image_dir(const StageContext& c) {
  return c.r.external() ? c.r.describe.image_dir : c.world + "/images";
}

const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> kinds = {
      {"world", false, 0, [](const Recipe& r) { return !r.external(); },
       [](StageContext& c) {
         world::WorldOptions wo;
         wo.out = c.world;
         wo.preset = c.r.world_preset;
         wo.seed = c.r.world_seed;
         wo.threads = std::max(0, c.r.threads);
         wo.progress = c.o.progress;
         const WorldModelSummary s = build_world_and_model(wo);
         append_log(c.log, str_cat("world ", s.world.out, ": ", s.world.images_total, " images (",
                                   s.world.images_rendered, " rendered), model ", s.world.model_dir,
                                   s.wrote_weights ? " (initialised)" : "", "\n"));
       }},
      {"vision", true, 0, [](const Recipe& r) { return !r.external() && r.vision.runs(); },
       [](StageContext& c) {
         VisionRunOptions vo;
         vo.model = c.model;
         vo.world = c.world;
         vo.output_dir = c.dir;
         vo.device = c.r.device;
         vo.dtype = c.r.dtype;
         vo.image_backend = c.r.image_backend;
         vo.train = stage_train_config(c.r.vision, c);
         const VisionRunResult res = run_train_vision(vo);
         append_log(c.log, str_cat("train-vision -> ", res.weights, ": ", res.train.steps, "/", res.train.total_steps,
                                   " steps, last loss ", res.train.last_loss, "\n"));
       }},
      {"pretrain", true, 0, [](const Recipe& r) { return !r.external() && r.pretrain.runs(); },
       [](StageContext& c) { run_sft_stage(c, c.r.pretrain, "base_pretrain.json", "eval_pretrain.json"); }},
      {"base", true, 0, [](const Recipe& r) { return !r.external(); },
       [](StageContext& c) { run_sft_stage(c, c.r.base, "base_train.json", "eval_sft.json"); }},
      {"instruct", true, 0, [](const Recipe& r) { return !r.external() && r.instruct.runs(); },
       [](StageContext& c) { run_sft_stage(c, c.r.instruct, "stage2_sft.json", "eval_sft.json"); }},
      {"eval", false, 0, [](const Recipe& r) { return evaluates(r); }, [](StageContext& c) { run_eval_stage(c, "", false); }},
      // STIC stage 1: the base model builds preference pairs from the unlabeled pool (their
      // quality scored against the ground truth), then learns from them (DPO, LoRA)
      {"pref", false, 0, [](const Recipe& r) { return r.stic(); }, [](StageContext& c) { run_pref_stage(c, 1); }},
      {"dpo", false, 1, [](const Recipe& r) { return r.stic(); }, [](StageContext& c) { run_dpo_stage(c, 1); }},
      {"eval_stage1", false, 0, [](const Recipe& r) { return evaluates(r) && r.stic(); },
       [](StageContext& c) { run_eval_stage(c, c.stage1, false); }},
      // iterative self-training (dpo.rounds): the newest adapter builds new pairs and DPO continues it
      {"pref_round2", false, 0, [](const Recipe& r) { return r.stic() && r.dpo.rounds >= 2; },
       [](StageContext& c) { run_pref_stage(c, 2); }},
      {"dpo_round2", false, 1, [](const Recipe& r) { return r.stic() && r.dpo.rounds >= 2; },
       [](StageContext& c) { run_dpo_stage(c, 2); }},
      {"eval_round2", false, 0, [](const Recipe& r) { return evaluates(r) && r.stic() && r.dpo.rounds >= 2; },
       [](StageContext& c) { run_eval_stage(c, c.stage1, false); }},
      {"pref_round3", false, 0, [](const Recipe& r) { return r.stic() && r.dpo.rounds >= 3; },
       [](StageContext& c) { run_pref_stage(c, 3); }},
      {"dpo_round3", false, 1, [](const Recipe& r) { return r.stic() && r.dpo.rounds >= 3; },
       [](StageContext& c) { run_dpo_stage(c, 3); }},
      {"eval_round3", false, 0, [](const Recipe& r) { return evaluates(r) && r.stic() && r.dpo.rounds >= 3; },
       [](StageContext& c) { run_eval_stage(c, c.stage1, false); }},
      // STIC stage 2: the stage-1 model describes the stage-2 pool; the descriptions are infused
      // into its instruction records, on which train-sft continues the stage-1 adapter. The
      // base model never saw this pool (its data is base_train.json, on the base pool).
      {"describe", false, 0, [](const Recipe& r) { return r.stage2(); },
       [](StageContext& c) {
         DescribeOptions d;
         d.model = c.model;
         d.adapter = c.stage1;
         d.device = c.r.device;
         d.dtype = c.r.dtype;
         d.image_backend = c.r.image_backend;
         d.data = stage2_records(c);
         d.image_dir = stage2_image_dir(c);
         if (!c.r.describe.template_name.empty()) d.template_name = c.r.describe.template_name;
         d.image_mode = c.r.describe.image_mode;
         d.ignore_eos = c.r.describe.ignore_eos;
         d.out = c.dir + "/descriptions.jsonl";
         d.max_new_tokens = c.r.describe.max_new_tokens;
         d.batch_size = c.r.describe.batch_size;
         d.temperature = static_cast<float>(c.r.describe.temperature);
         d.seed = c.r.describe.seed;
         d.progress = c.o.progress;
         const DescribeResult res = run_describe(d);
         append_log(c.log, str_cat("describe ", d.data, " -> ", d.out, ": ", res.described, " images described, ",
                                   res.failed, " unreadable, ", res.resumed, " records resumed\n"));
         if (res.failed) fail(d.out, ": ", res.failed, " image(s) could not be described");
       }},
      {"infuse", false, 0, [](const Recipe& r) { return r.stage2(); },
       [](StageContext& c) {
         InfuseOptions io;
         io.data = stage2_records(c);
         io.descriptions = c.wd + "/describe/descriptions.jsonl";
         io.out = c.dir + "/stage2_infused.json";
         const InfuseResult res = run_infuse(io);
         append_log(c.log, str_cat("infuse -> ", io.out, ": ", res.infused, "/", res.records, " records infused\n"));
         if (res.infused != res.records) fail(io.out, ": ", res.records - res.infused, " record(s) not infused (see ", io.out, ".summary.json)");
       }},
      {"sft2", false, 2, [](const Recipe& r) { return r.stage2(); },
       [](StageContext& c) {
         const Sft2Stage& t = c.r.sft2;
         SftRunOptions so;
         so.model = c.model;
         so.output_dir = c.dir;
         so.device = c.r.device;
         so.dtype = c.r.dtype;
         so.image_backend = c.r.image_backend;
         so.train = stage_train_config(t.train, c);
         so.setup.adapter = c.stage1;  // one adapter, continued, as the method does
         so.setup.lora.dropout = t.lora_dropout;
         so.setup.gradient_checkpointing = t.train.gradient_checkpointing;
         if (!t.template_name.empty()) so.template_name = t.template_name;
         so.image_mode = t.image_mode;
         so.data = c.wd + "/infuse/stage2_infused.json";
         so.image_dir = stage2_image_dir(c);
         so.max_length = t.train.max_length;
         so.image_marker = t.train.image_marker;
         const SftRunResult res = run_sft(so);
         append_log(c.log, str_cat("train-sft --adapter ", c.stage1, " ", so.data, " -> ", res.weights, ": ",
                                   res.train.steps, "/", res.train.total_steps, " steps, last loss ",
                                   res.train.last_loss, "; ", res.data_summary, "\n"));
       }},
      {"eval_stage2", false, 0, [](const Recipe& r) { return evaluates(r) && r.stage2(); },
       [](StageContext& c) { run_eval_stage(c, c.stage2, false); }},
      // describe-and-respond: each model again, describing each image before answering
      {"eval_dar", false, 0, [](const Recipe& r) { return evaluates(r) && r.eval_dar; },
       [](StageContext& c) { run_eval_stage(c, "", true); }},
      {"eval_stage1_dar", false, 0, [](const Recipe& r) { return evaluates(r) && r.eval_dar && r.stic(); },
       [](StageContext& c) { run_eval_stage(c, c.stage1, true); }},
      {"eval_stage2_dar", false, 0, [](const Recipe& r) { return evaluates(r) && r.eval_dar && r.stage2(); },
       [](StageContext& c) { run_eval_stage(c, c.stage2, true); }},
      {"report", false, 0, [](const Recipe&) { return true; },
       [](StageContext& c) {
         fs::create_directories(c.dir);
         if (c.r.external()) write_bench_report(c.r, c.wd);
         else write_report(c.r, c.wd);
       }},
  };
  return kinds;
}

}  // namespace

const std::vector<std::string>& stage_order() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& k : stage_kinds()) n.push_back(k.name);
    return n;
  }();
  return names;
}

std::string run_pipeline(const Recipe& r, const PipelineOptions& o) {
  if (const DistEnv de = dist_env(); de.world > 1)  // every rank would run every stage on the same folder
    fail("pipeline: runs as one process (this one is rank ", de.rank, " of ", de.world,
         "); run the training verbs under stic launch instead");
  if (!r.external()) world::find_preset(r.world_preset);  // an unknown preset fails here, before any work
  if (!o.until.empty() &&
      std::find(stage_order().begin(), stage_order().end(), o.until) == stage_order().end())
  {
    std::string names;
    for (const auto& n : stage_order()) names += (names.empty() ? "" : ", ") + n;
    fail("pipeline: --until: unknown stage '", o.until, "' (stages: ", names, ")");
  }
  const std::string wd = o.workdir;
  std::error_code ec;
  fs::create_directories(wd + "/logs", ec);
  if (ec) fail(wd, ": cannot create the work folder: ", ec.message());

  // the work folder belongs to one resolved recipe
  const json rj = r.to_json();
  const std::string rpath = wd + "/recipe.json";
  if (file_exists(rpath)) {
    json old;
    try {
      old = json::parse(read_text_file(rpath));
    } catch (const std::exception&) {
      fail(rpath, ": not valid JSON (delete it to start over)");
    }
    if (old != rj) {
      std::string diff;
      for (auto& [k, v] : rj.items())
        if (!old.contains(k) || old[k] != v) diff += (diff.empty() ? "" : ", ") + k;
      fail(wd, ": holds a run of a different recipe (", diff.empty() ? std::string("keys differ") : "differs in " + diff,
           "; see ", rpath, "); use another --workdir or delete it");
    }
  } else {
    write_file_atomic(rpath, rj.dump(2) + "\n");
  }
  if (r.threads > 0) torch::set_num_threads(r.threads);  // every stage's torch threads

  json timings = file_exists(wd + "/timings.json") ? json::parse(read_text_file(wd + "/timings.json")) : json::object();
  StageContext c{r, o, wd, wd + "/world", r.external() ? r.model_path : wd + "/world/model", "", "", "", ""};
  std::string report;
  for (const StageKind& kind : stage_kinds()) {
    const std::string stage = kind.name;
    if (!kind.enabled(r)) {
      if (stage == o.until) break;
      continue;
    }
    c.dir = stage == "report" ? wd + "/report" : wd + "/" + stage;
    c.log = wd + "/logs/" + stage + ".log";
    const std::string marker = c.dir + "/.done";
    if (file_exists(marker)) {
      std::fprintf(stderr, "[pipeline] %s: finished earlier, skipped (%s)\n", stage.c_str(), marker.c_str());
    } else {
      std::fprintf(stderr, "[pipeline] %s: running\n", stage.c_str());
      const auto t0 = std::chrono::steady_clock::now();
      try {
        kind.run(c);
      } catch (const std::exception& e) {  // stic::Error, torch's (out of memory), the file system's
        append_log(c.log, str_cat("failed: ", e.what(), "\n"));
        fail("pipeline: stage '", stage, "' failed: ", e.what(), "; fix the cause and re-run the same command to resume");
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      timings[stage] = secs;
      write_file_atomic(wd + "/timings.json", timings.dump(2) + "\n");
      if (stage == "report") r.external() ? void(write_bench_report(r, wd)) : void(write_report(r, wd));  // again, with its own time
      write_file_atomic(marker, json({{"stage", stage}, {"seconds", secs}}).dump() + "\n");
      std::fprintf(stderr, "[pipeline] %s: done in %.1fs\n", stage.c_str(), secs);
    }
    if (kind.trains) c.model = c.dir;
    if (kind.adapter == 1) c.stage1 = c.dir;
    if (kind.adapter == 2) c.stage2 = c.dir;
    if (stage == "report") report = wd + "/report.md";
    if (stage == o.until) break;
  }
  return report;
}

}  // namespace stic
