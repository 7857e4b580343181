// stic pipeline — a YAML recipe run stage by stage (world -> base model -> eval -> report),
// resumable: see src/stic/method/pipeline.h and docs/recipes.md.
#include <cstdio>
#include <memory>

#include "stic/method/pipeline.h"
#include "stic/method/recipe.h"
#include "stic/util/error.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct PipelineArgs {
  std::string recipe, workdir, until, preset, device, dtype;
  int64_t max_steps = -1, instruct_steps = -1, pretrain_steps = -1;
  int threads = -1;
  bool quiet = false;
  std::vector<std::string> sets;
};

int run_pipeline_verb(const PipelineArgs& a) {
  Recipe r = load_recipe(a.recipe, a.sets);
  // flags win over the recipe
  if (!a.preset.empty()) r.world_preset = a.preset;
  if (!a.device.empty()) r.device = a.device;
  if (!a.dtype.empty()) r.dtype = a.dtype;
  if (a.threads >= 0) r.threads = a.threads;
  if (a.max_steps >= 1) r.base.max_steps = a.max_steps;
  if (a.instruct_steps >= 0) r.instruct.max_steps = a.instruct_steps;
  if (a.pretrain_steps >= 0) r.pretrain.max_steps = a.pretrain_steps;
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
  c->add_option("--until", a->until, "stop after this stage: world|vision|pretrain|base|instruct|eval|pref|dpo|eval_stage1|describe|infuse|sft2|eval_stage2|eval_dar|eval_stage1_dar|eval_stage2_dar|report");
  c->add_option("--preset", a->preset, "override world.preset");
  c->add_option("--max-steps", a->max_steps, "override base.max_steps")->check(CLI::PositiveNumber);
  c->add_option("--pretrain-steps", a->pretrain_steps, "override pretrain.max_steps (0 = no caption pretraining)");
  c->add_option("--instruct-steps", a->instruct_steps, "override instruct.max_steps (0 = no instruction pass)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--threads", a->threads, "override threads (torch threads per stage; 0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "override device (cpu|cuda|cuda:N)");
  c->add_option("--dtype", a->dtype, "override dtype (auto|fp32|bf16)");
  c->add_flag("--quiet", a->quiet, "no progress bars in the stages");
  c->add_option("--set", a->sets,
                "override a recipe value: section.key=value, repeatable (e.g. --set dpo.alpha=0 --set pref.p_bad_prompt=1)");
  verb_callbacks()[c] = [a] { return run_pipeline_verb(*a); };
}

}  // namespace stic::app
