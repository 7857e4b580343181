// stic eval — benchmarks. Today: `--benchmark world`, the built-in world's eval set scored
// against exact ground truth (src/stic/eval/world_eval.h). Other benchmarks and --dar come later.
#include <cstdio>
#include <memory>

#include "stic/eval/world_eval.h"
#include "stic/util/error.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct EvalArgs {
  WorldEvalOptions w;
  std::string benchmark;
  bool quiet = false;
};

int run_eval(EvalArgs a) {
  if (a.benchmark != "world")
    fail("eval: unknown benchmark '", a.benchmark, "' (available: world; mmbench, pope, scienceqa, textvqa and --dar "
         "are not implemented yet)");
  a.w.progress = !a.quiet;
  const auto r = run_world_eval(a.w);
  std::printf("%s", r.scores.markdown().c_str());
  std::fprintf(stderr, "stic eval: %lld generated (%.1fs), %lld resumed, %lld failed; results in %s\n",
               static_cast<long long>(r.generated), r.gen_seconds, static_cast<long long>(r.resumed),
               static_cast<long long>(r.failed), a.w.out.c_str());
  if (r.failed) fail(a.w.out, ": ", r.failed, " request(s) failed (see above); re-run to retry them");
  return 0;
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand("eval", "evaluate a model on a benchmark (today: the built-in world)");
  c->add_option("--model", a->w.model, "model folder")->required();
  c->add_option("--adapter", a->w.adapter, "PEFT LoRA adapter (merged into the model for evaluation)");
  c->add_option("--benchmark", a->benchmark, "world (the built-in world's eval set)")->required();
  c->add_option("--data", a->w.world, "the world folder (from stic world)")->required();
  c->add_option("--out", a->w.out, "output folder: predictions.jsonl (resumable), per_item.jsonl, summary.{json,md}")
      ->required();
  c->add_option("--batch-size", a->w.batch_size, "concurrent sequences")->check(CLI::PositiveNumber);
  c->add_option("--max-new-tokens", a->w.max_new_tokens, "for descriptions (short answers get at most 16)")
      ->check(CLI::PositiveNumber);
  c->add_option("--device", a->w.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", a->w.dtype, "auto|fp32|bf16|fp16");
  c->add_flag("--quiet", a->quiet, "no progress bar");
  verb_callbacks()[c] = [a] { return run_eval(*a); };
}

}  // namespace stic::app
