// stic/method/pipeline.h — `stic pipeline`: a recipe run stage by stage in a work folder.
//
//   WORKDIR/recipe.json     the resolved recipe (a re-run with a different one is refused)
//   WORKDIR/world/          stic world --preset P              (stage "world")
//   WORKDIR/base/           stic train-sft --full on world/data/base_train.json  ("base")
//   WORKDIR/instruct/       stic train-sft --full on world/data/stage2_sft.json  ("instruct", optional)
//   WORKDIR/eval/           stic eval --benchmark world with the last model      ("eval")
//   WORKDIR/report.md, report.html, report/   metrics, loss plot, examples       ("report")
//   WORKDIR/logs/STAGE.log  the stage's standard output (its command line first)
//   WORKDIR/timings.json    seconds per stage (of the run that finished it)
// Each stage is a subprocess of this binary running the ordinary verb; a finished stage leaves
// WORKDIR/STAGE/.done and is skipped on a re-run; an unfinished one is resumed by its verb
// (the world completes its images, training continues from its last checkpoint, eval skips
// the predictions it already has).
#pragma once

#include <string>

#include "stic/method/recipe.h"

namespace stic {

struct PipelineOptions {
  std::string workdir;
  std::string until;  // "" = all stages; else stop after this stage (world|base|instruct|eval|report)
  bool progress = true;
};

// Runs (or completes) the recipe; returns the path of the report. Throws stic::Error.
std::string run_pipeline(const Recipe& r, const PipelineOptions& o);

// The report alone (exposed for tests): reads WORKDIR's stage outputs, writes report.md/.html.
std::string write_report(const Recipe& r, const std::string& workdir);

}  // namespace stic
