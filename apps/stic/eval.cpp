// stic eval — benchmarks: the real benchmark files (pope, scienceqa, textvqa, mmbench, llava-bench,
// mm-vet: src/stic/eval/bench_eval.h, rules in src/stic/score/benchmark.h), `world` (the built-in
// world's eval set scored against exact ground truth, src/stic/eval/world_eval.h) and `world-pref`
// (preference pairs scored against it, src/stic/eval/world_pref.h); --dar: describe-and-respond;
// --answers: score an existing answer file; --compare: runs side by side.
#include <cstdio>
#include <memory>

#include "stic/eval/bench_eval.h"
#include "stic/infer/batch_job.h"
#include "stic/eval/world_eval.h"
#include "stic/eval/world_pref.h"
#include "stic/util/error.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct EvalArgs {
  WorldEvalOptions w;
  BenchEvalOptions b;
  std::string benchmark, pairs, shard;
  std::vector<std::string> compare;
  bool quiet = false, no_circular = false;
  int batch_size = 0, max_new_tokens = 0;
};

int run_real_benchmark(EvalArgs& a) {
  BenchEvalOptions& o = a.b;
  o.data.benchmark = a.benchmark;
  o.data.data = a.w.world;
  o.data.circular = !a.no_circular;
  o.model = a.w.model;
  o.adapter = a.w.adapter;
  o.out = a.w.out;
  o.device = a.w.device;
  o.dtype = a.w.dtype;
  o.image_backend = a.w.image_backend;
  o.dar = a.w.dar;
  o.dar_prompt = a.w.dar_prompt;
  o.dar_max_new_tokens = a.w.dar_max_new_tokens;
  o.dar_model = a.w.dar_model;
  o.dar_adapter = a.w.dar_adapter;
  if (a.batch_size > 0) o.batch_size = a.batch_size;
  o.max_new_tokens = a.max_new_tokens;
  o.progress = !a.quiet;
  if (!a.shard.empty()) {
    const Shard s = parse_shard(a.shard);
    o.shard_index = s.index, o.shard_count = s.count;
  }
  if (!o.answers.empty() && !o.model.empty()) fail("eval: --answers scores an existing file; leave out --model");
  if (o.answers.empty() && o.model.empty()) fail("eval --benchmark ", a.benchmark, ": give --model, or --answers FILE");
  const auto r = run_bench_eval(o);
  if (o.shard_count > 1) {
    std::fprintf(stderr, "stic eval: shard %s: %lld answered (%.1fs), %lld resumed, %lld failed; merge the shards' "
                 "answers.jsonl and score them with --answers\n", a.shard.c_str(), static_cast<long long>(r.generated),
                 r.gen_seconds, static_cast<long long>(r.resumed), static_cast<long long>(r.failed));
    return 0;
  }
  std::printf("%s", r.scores.markdown.c_str());
  if (o.dar)
    std::fprintf(stderr, "stic eval: DaR: %lld images described (%.1fs)\n", static_cast<long long>(r.dar_described),
                 r.dar_seconds);
  if (o.answers.empty())
    std::fprintf(stderr, "stic eval: %lld questions, %lld answered (%.1fs), %lld resumed, %lld failed; results in %s\n",
                 static_cast<long long>(r.questions), static_cast<long long>(r.generated), r.gen_seconds,
                 static_cast<long long>(r.resumed), static_cast<long long>(r.failed), o.out.c_str());
  // exit 0 unless nothing could be scored
  const int64_t errors = r.scores.summary["errors"].value("count", int64_t{0});
  if (r.questions > 0 && errors >= r.questions)
    fail(o.out, ": none of the ", r.questions, " questions could be scored (see summary.json's errors)");
  return 0;
}

int run_eval(EvalArgs a) {
  if (!a.compare.empty()) {
    std::printf("%s", compare_runs(a.compare).c_str());
    return 0;
  }
  if (a.benchmark.empty()) fail("eval: give --benchmark (or --compare DIR DIR ...)");
  if (a.w.world.empty()) fail("eval --benchmark ", a.benchmark, ": give --data");
  if (a.w.out.empty()) fail("eval --benchmark ", a.benchmark, ": give --out");
  if (a.benchmark != "world" && a.benchmark != "world-pref") return run_real_benchmark(a);
  if (a.batch_size > 0) a.w.batch_size = a.batch_size;
  if (a.max_new_tokens > 0) a.w.max_new_tokens = a.max_new_tokens;
  if (a.benchmark == "world-pref") {
    if (a.pairs.empty()) fail("eval --benchmark world-pref: give the pair file with --pairs");
    const auto r = score_world_pref({a.w.world, a.pairs, a.w.out});
    std::printf("%s", r.markdown.c_str());
    return 0;
  }
  if (a.w.model.empty()) fail("eval --benchmark world: --model is required");
  a.w.progress = !a.quiet;
  const auto r = run_world_eval(a.w);
  std::printf("%s", r.scores.markdown().c_str());
  if (a.w.dar)
    std::fprintf(stderr, "stic eval: DaR: %lld images described (%.1fs)\n", static_cast<long long>(r.dar_described),
                 r.dar_seconds);
  std::fprintf(stderr, "stic eval: %lld generated (%.1fs), %lld resumed, %lld failed; results in %s\n",
               static_cast<long long>(r.generated), r.gen_seconds, static_cast<long long>(r.resumed),
               static_cast<long long>(r.failed), a.w.out.c_str());
  if (r.failed) fail(a.w.out, ": ", r.failed, " request(s) failed (see above); re-run to retry them");
  return 0;
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand("eval", "evaluate a model (or score an answer file) on a benchmark; compare runs");
  c->add_option("--model", a->w.model, "model folder (not with --answers, not for world-pref)");
  c->add_option("--adapter", a->w.adapter, "PEFT LoRA adapter (merged into the model for evaluation)");
  c->add_option("--benchmark", a->benchmark,
                "pope | scienceqa | textvqa | mmbench | llava-bench | mm-vet (the real files); world | world-pref "
                "(the built-in world)")
      ->check(CLI::IsMember({"pope", "scienceqa", "textvqa", "mmbench", "llava-bench", "mm-vet", "world", "world-pref"}));
  c->add_option("--data", a->w.world,
                "the question file as LLaVA's eval scripts read it (MMBench: the TSV); world: the world folder");
  c->add_option("--annotations", a->b.data.annotations,
                "what the scorer reads: POPE's folder of coco_pope_*.json, ScienceQA's folder with problems.json "
                "and pid_splits.json, TextVQA_0.5.1_val.json");
  c->add_option("--image-dir", a->b.data.image_dir, "folder the question file's images are relative to");
  c->add_option("--split", a->b.data.split, "ScienceQA: the pid_splits.json split (default test)");
  c->add_flag("--no-circular", a->no_circular, "MMBench: ask each question once (no option rotations)");
  c->add_option("--answers", a->b.answers,
                "score this answer file (LLaVA's layout: question_id, prompt, text) instead of running a model");
  c->add_option("--model-id", a->b.model_id, "model_id written in answers.jsonl (default: the adapter's or model's folder name)");
  c->add_option("--template", a->b.template_name, "chat template (default: the model's)");
  c->add_option("--limit", a->b.data.limit, "the first N questions only (MMBench: N source questions)")
      ->check(CLI::PositiveNumber);
  c->add_option("--shard", a->shard, "i/n: this process's part of the questions (by a stable hash of the id)");
  c->add_option("--compare", a->compare, "eval output folders to print side by side (no evaluation runs)")
      ->expected(2, 64);
  c->add_option("--pairs", a->pairs, "world-pref: the preference pairs (stic generate-pref's output)");
  c->add_option("--out", a->w.out,
                "output folder: answers.jsonl (resumable), per_question.jsonl, summary.{json,md} (world: predictions.jsonl, "
                "per_item.jsonl)");
  c->add_option("--batch-size", a->batch_size, "concurrent sequences")->check(CLI::PositiveNumber);
  c->add_option("--max-new-tokens", a->max_new_tokens,
                "answer length limit (default: the benchmark's: 128 for short answers, 1024 open-ended; world 160)")
      ->check(CLI::PositiveNumber);
  c->add_option("--device", a->w.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", a->w.dtype, "auto|fp32|bf16|fp16");
  add_image_backend_flag(c, a->w.image_backend);
  c->add_flag("--dar", a->w.dar,
              "describe-and-respond: describe each image first (greedy), then ask with the description infused");
  c->add_option("--dar-prompt", a->w.dar_prompt, "DaR's description prompt (default: \"Detail the composition and subjects within the frame.\")");
  c->add_option("--dar-max-new-tokens", a->w.dar_max_new_tokens, "DaR's description length limit")
      ->check(CLI::PositiveNumber);
  c->add_option("--dar-model", a->w.dar_model, "describe with this model instead (DaR)");
  c->add_option("--dar-adapter", a->w.dar_adapter, "and this adapter on it (DaR; with --dar-model)");
  c->add_flag("--quiet", a->quiet, "no progress bar");
  verb_callbacks()[c] = [a] { return run_eval(*a); };
}

}  // namespace stic::app
