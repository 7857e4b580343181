// stic/method/sweep.h — `stic pipeline --seeds 0,1,2 [--variant NAME:key=value,...]`: a recipe
// repeated over seeds, with variants of its STIC stages, and one report comparing them.
//
//   WORKDIR/seed{S}/                    the recipe with world.seed = S (the world, the model's
//                                       init and every stage's seed derive from it): a whole
//                                       pipeline run (pipeline.h), variant "recipe"
//   WORKDIR/seed{S}/variants/NAME/      the variant's run: its own STIC stages (pref, dpo, ...,
//                                       evals, report); world, vision, pretrain, base, instruct,
//                                       eval and eval_dar are links to seed{S}'s, so the base
//                                       model is trained once per seed and shared
//   WORKDIR/compare.md, compare.json    per variant and model (base, + stage 1, + stage 2, each
//                                       ± DaR): description precision / recall / CHAIR_i,
//                                       colour accuracy, multiple choice, POPE F1 as mean ± std
//                                       over the seeds
// A variant may change only the STIC sections (pref., dpo., describe., sft2.); anything else
// would make the shared base model wrong, and is refused. Each run resumes like a pipeline run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stic {

struct SweepVariant {
  std::string name;
  std::vector<std::string> sets;  // "section.key=value" on top of the recipe
};

struct SweepOptions {
  std::string recipe, workdir;
  std::vector<std::string> sets;    // --set overrides for every run
  std::vector<uint64_t> seeds;
  std::vector<SweepVariant> variants;
  bool progress = true;
};

// "NAME:key=value,key=value" (a value may not hold a comma); throws stic::Error.
SweepVariant parse_variant(const std::string& text);
// The named ablations of the method: no_regulariser (dpo.alpha=0), bad_prompt_negatives
// (pref.p_bad_prompt=1), corruption_negatives (pref.p_bad_prompt=0), no_negatives (SFT on the
// chosen answers: dpo.loss_type=sft, alpha_norm mean, alpha 1), no_stage2 (sft2.max_steps=0).
std::vector<SweepVariant> standard_ablations();

// Runs (or completes) every seed and variant; writes and returns WORKDIR/compare.md.
std::string run_sweep(const SweepOptions& o);

// The comparison of finished runs (also called by run_sweep): Markdown, and its JSON beside it.
std::string write_sweep_report(const SweepOptions& o);

}  // namespace stic
