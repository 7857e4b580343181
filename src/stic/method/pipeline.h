// stic/method/pipeline.h — `stic pipeline`: a recipe run stage by stage in a work folder.
//
//   WORKDIR/recipe.json     the resolved recipe (a re-run with a different one is refused)
//   WORKDIR/world/          stic world --preset P              (stage "world")
//   WORKDIR/base/           stic train-sft --full on world/data/base_train.json  ("base")
//   WORKDIR/instruct/       stic train-sft --full on world/data/stage2_sft.json  ("instruct", optional)
//   WORKDIR/eval/           stic eval --benchmark world with the last model      ("eval")
//   WORKDIR/pref/           STIC stage-1 data: generate-pref on the unlabeled pool with that model,
//                           pref/quality/ its pairs scored against the ground truth ("pref")
//   WORKDIR/dpo/            stic train-dpo on pref/pairs.jsonl: a LoRA adapter   ("dpo")
//   WORKDIR/eval_stage1/    eval of the model + that adapter                     ("eval_stage1")
//                           (pref, dpo, eval_stage1 run when the recipe's dpo.max_steps > 0)
//   WORKDIR/{pref,dpo,eval}_round{2,3}/  dpo.rounds > 1: the newest adapter builds new pairs,
//                           DPO continues it (reference: the adapter disabled), eval; stage 2
//                           then starts from the last round's adapter (eval_stage1_dar evaluates it too)
//   WORKDIR/report.md, report.html, report/   metrics, loss plot, examples       ("report")
//   WORKDIR/logs/STAGE.log  what the stage produced (a summary line; eval: the metrics table)
//   WORKDIR/timings.json    seconds per stage (of the run that finished it)
// The stages are a list of stage kinds (pipeline.cpp), each running its verb's library call with
// the verb's options struct, in this process (torch threads = the recipe's `threads`). A
// finished stage leaves WORKDIR/STAGE/.done and is skipped on a re-run; an unfinished one
// resumes (the world completes its images, training continues from its last checkpoint, eval
// skips the predictions it already has).
#pragma once

#include <string>
#include <vector>

#include "stic/method/recipe.h"

namespace stic {

struct PipelineOptions {
  std::string workdir;
  std::string until;  // "" = all stages; else stop after this stage (world|base|instruct|eval|report)
  bool progress = true;
};

// Runs (or completes) the recipe; returns the path of the report. Throws stic::Error.
std::string run_pipeline(const Recipe& r, const PipelineOptions& o);

// The stage names in the order they run (world, vision, pretrain, base, instruct, eval, pref,
// dpo, eval_stage1, report).
const std::vector<std::string>& stage_order();

}  // namespace stic
