// stic pipeline — a YAML recipe run stage by stage (world -> base model -> eval -> report),
// resumable: see src/stic/method/pipeline.h and docs/recipes.md; with --seeds, repeated over
// seeds with variants of the STIC stages and one comparison (src/stic/method/sweep.h).
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "stic/method/pipeline.h"
#include "stic/method/plan.h"
#include "stic/method/recipe.h"
#include "stic/method/sweep.h"
#include "stic/util/strings.h"
#include "stic/util/error.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct PipelineArgs {
  std::string recipe, workdir, until, preset, device, dtype, image_backend;
  int64_t max_steps = -1, instruct_steps = -1, pretrain_steps = -1;
  int threads = -1;
  bool quiet = false, ablations = false, dry_run = false;
  std::string card;
  int64_t expect_tokens = 0;
  std::vector<std::string> sets, variants;
  std::string seeds;
};

int run_pipeline_verb(const PipelineArgs& a) {
  // flags win over the recipe: they become --set overrides, checked like the file's values
  std::vector<std::string> sets = a.sets;
  if (!a.preset.empty()) sets.push_back("world.preset=" + a.preset);
  if (!a.device.empty()) sets.push_back("device=" + a.device);
  if (!a.dtype.empty()) sets.push_back("dtype=" + a.dtype);
  if (!a.image_backend.empty()) sets.push_back("image_backend=" + a.image_backend);
  if (a.threads >= 0) sets.push_back("threads=" + std::to_string(a.threads));
  if (a.max_steps >= 1) sets.push_back("base.max_steps=" + std::to_string(a.max_steps));
  if (a.instruct_steps >= 0) sets.push_back("instruct.max_steps=" + std::to_string(a.instruct_steps));
  if (a.pretrain_steps >= 0) sets.push_back("pretrain.max_steps=" + std::to_string(a.pretrain_steps));
  Recipe r = load_recipe(a.recipe, sets);
  if (a.dry_run) {
    if (!a.seeds.empty() || !a.variants.empty() || a.ablations)
      fail("pipeline --dry-run checks one recipe; leave out --seeds / --variant / --ablations");
    PipelineOptions o;
    o.workdir = a.workdir.empty() ? "out/" + r.name : a.workdir;
    const PlanResult p = plan_pipeline(r, o, {a.card, a.expect_tokens});
    std::printf("%s", p.text.c_str());
    return p.problems ? 1 : 0;
  }
  if (!a.seeds.empty() || !a.variants.empty() || a.ablations) {
    if (!a.until.empty()) fail("pipeline: --until runs one pipeline; leave it out with --seeds / --variant");
    if (r.external())
      fail("pipeline: --seeds / --variant / --ablations repeat a world recipe over world seeds; ", a.recipe,
           " runs on model.path (run it once per setting with --set and its own --workdir)");
    SweepOptions so;
    so.recipe = a.recipe;
    so.workdir = a.workdir.empty() ? "out/" + r.name + "-sweep" : a.workdir;
    so.sets = sets;
    so.progress = !a.quiet;
    for (const auto& s : split_nonempty(a.seeds.empty() ? std::to_string(r.world_seed) : a.seeds, ',')) {
      try {
        const std::string v = strip(s);
        if (v.find_first_not_of("0123456789") != std::string::npos) throw std::invalid_argument(v);  // stoull wraps "-1"
        so.seeds.push_back(std::stoull(v));
      } catch (const std::exception&) {
        fail("--seeds '", a.seeds, "': expected comma-separated non-negative integers (e.g. 0,1,2)");
      }
    }
    if (a.ablations) so.variants = standard_ablations();
    for (const auto& v : a.variants) so.variants.push_back(parse_variant(v));
    const std::string cmp = run_sweep(so);
    std::fprintf(stderr, "[sweep] comparison: %s (and compare.json beside it)\n", cmp.c_str());
    std::printf("%s\n", cmp.c_str());
    return 0;
  }
  PipelineOptions o;
  o.workdir = a.workdir.empty() ? "out/" + r.name : a.workdir;
  o.until = a.until;
  o.progress = !a.quiet;
  const std::string report = run_pipeline(r, o);
  if (!report.empty()) std::fprintf(stderr, "[pipeline] report: %s (and report.html beside it)\n", report.c_str());
  std::printf("%s\n", report.empty() ? o.workdir.c_str() : report.c_str());
  return 0;
}

}  // namespace

void register_pipeline(CLI::App& app) {
  auto a = std::make_shared<PipelineArgs>();
  auto* c = app.add_subcommand("pipeline", "run a YAML recipe stage by stage (resumable): world, base model, eval, report");
  c->add_option("--recipe", a->recipe, "recipe file (recipes/world-tiny.yaml, ...)")->required();
  c->add_option("--workdir", a->workdir, "work folder (default out/NAME); re-running resumes it");
  c->add_option("--until", a->until, "stop after this stage: world|vision|pretrain|base|instruct|eval|pref|dpo|eval_stage1|pref_round2|dpo_round2|eval_round2|pref_round3|dpo_round3|eval_round3|describe|infuse|sft2|eval_stage2|eval_dar|eval_stage1_dar|eval_stage2_dar|report");
  c->add_option("--preset", a->preset, "override world.preset");
  c->add_option("--max-steps", a->max_steps, "override base.max_steps")->check(CLI::PositiveNumber);
  c->add_option("--pretrain-steps", a->pretrain_steps, "override pretrain.max_steps (0 = no caption pretraining)");
  c->add_option("--instruct-steps", a->instruct_steps, "override instruct.max_steps (0 = no instruction pass)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--threads", a->threads, "override threads (torch threads per stage; 0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "override device (cpu|cuda|cuda:N)");
  c->add_option("--dtype", a->dtype, "override dtype (auto|fp32|bf16)");
  add_image_backend_flag(c, a->image_backend);
  c->add_flag("--quiet", a->quiet, "no progress bars in the stages");
  c->add_flag("--dry-run", a->dry_run,
              "check every input (model, images, data, benchmark files) and print the stages, their sizes and an "
              "estimate of each stage's time; runs nothing (exit 1 when an input would stop the run)");
  c->add_option("--card", a->card, "--dry-run: estimate for this card (H200 | H100; default: the device's)")
      ->check(CLI::IsMember({"H200", "H100"}));
  c->add_option("--expect-tokens", a->expect_tokens,
                "--dry-run: estimate generation with answers of this many tokens (default: every answer at its limit)")
      ->check(CLI::PositiveNumber);
  c->add_option("--set", a->sets,
                "override a recipe value: section.key=value, repeatable (e.g. --set dpo.alpha=0 --set pref.p_bad_prompt=1)");
  c->add_option("--seeds", a->seeds,
                "repeat the recipe with world.seed = each of these (e.g. 0,1,2): WORKDIR/seed{S}/, and WORKDIR/compare.md "
                "with mean ± std");
  c->add_option("--variant", a->variants,
                "NAME:section.key=value[,...]: also run the STIC stages with these overrides on each seed's base model "
                "(repeatable; only pref., dpo., describe., sft2. keys)");
  c->add_flag("--ablations", a->ablations,
              "add the method's ablations as variants: no_regulariser (dpo.alpha=0), bad_prompt_negatives "
              "(pref.p_bad_prompt=1), corruption_negatives (pref.p_bad_prompt=0), no_negatives (SFT on the chosen answers), "
              "no_stage2 (sft2.max_steps=0)");
  verb_callbacks()[c] = [a] { return run_pipeline_verb(*a); };
}

}  // namespace stic::app
