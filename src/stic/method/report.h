// stic/method/report.h — the report of a pipeline run: WORKDIR/report.md and report.html (the
// ground-truth metrics table, the training-loss plot report/loss.svg, held-out image gain per
// stage, time per stage, and held-out images beside the model's descriptions and the truth).
#pragma once

#include <string>

#include "stic/method/recipe.h"

namespace stic {

// Reads WORKDIR's stage outputs and writes report.md/.html; returns report.md's path. Throws
// stic::Error when the eval stage has not finished.
std::string write_report(const Recipe& r, const std::string& workdir);

// The report of a recipe on an external model (no ground truth): the benchmark table (rows base,
// + stage 1, + stage 2, each with and without DaR; one column per benchmark metric), the
// preference data's summary (pairs by kind, answer lengths, token-limit hits), the DPO curves,
// the stage-2 loss, the infusion counts and the time and rate of every stage.
std::string write_bench_report(const Recipe& r, const std::string& workdir);

}  // namespace stic
