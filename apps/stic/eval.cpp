// stic eval — benchmarks: `world` (the built-in world's eval set scored against exact ground
// truth, src/stic/eval/world_eval.h) and `world-pref` (preference pairs scored against it,
// src/stic/eval/world_pref.h); --dar: describe-and-respond. Other benchmarks come later.
#include <cstdio>
#include <memory>

#include "stic/eval/world_eval.h"
#include "stic/eval/world_pref.h"
#include "stic/util/error.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct EvalArgs {
  WorldEvalOptions w;
  std::string benchmark, pairs;
  bool quiet = false;
};

int run_eval(EvalArgs a) {
  if (a.benchmark == "world-pref") {
    if (a.pairs.empty()) fail("eval --benchmark world-pref: give the pair file with --pairs");
    const auto r = score_world_pref({a.w.world, a.pairs, a.w.out});
    std::printf("%s", r.markdown.c_str());
    return 0;
  }
  if (a.benchmark != "world")
    fail("eval: unknown benchmark '", a.benchmark, "' (available: world, world-pref; mmbench, pope, scienceqa, "
         "textvqa are not implemented yet)");
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
  auto* c = app.add_subcommand("eval", "evaluate a model on a benchmark (today: the built-in world)");
  c->add_option("--model", a->w.model, "model folder (not for world-pref)");
  c->add_option("--adapter", a->w.adapter, "PEFT LoRA adapter (merged into the model for evaluation)");
  c->add_option("--benchmark", a->benchmark, "world (the built-in world's eval set) | world-pref (--pairs scored against its truth)")
      ->required();
  c->add_option("--pairs", a->pairs, "world-pref: the preference pairs (stic generate-pref's output)");
  c->add_option("--data", a->w.world, "the world folder (from stic world)")->required();
  c->add_option("--out", a->w.out, "output folder: predictions.jsonl (resumable), per_item.jsonl, summary.{json,md}")
      ->required();
  c->add_option("--batch-size", a->w.batch_size, "concurrent sequences")->check(CLI::PositiveNumber);
  c->add_option("--max-new-tokens", a->w.max_new_tokens, "for descriptions (short answers get at most 16)")
      ->check(CLI::PositiveNumber);
  c->add_option("--device", a->w.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", a->w.dtype, "auto|fp32|bf16|fp16");
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
