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

}  // namespace stic
