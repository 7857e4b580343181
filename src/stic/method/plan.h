// stic/method/plan.h — `stic pipeline --dry-run`: every input of a recipe checked before any
// work (the model's config, weights and tokenizer; the image folders and lists; the instruction
// data and the images its records name; each benchmark's files), then the stages in order with
// their sizes and an estimate of each stage's time from measured rates (docs/paper-run.md,
// "Time"). Nothing is written (MMBench's images are decoded into a temporary folder, then removed).
//
// The rates are the engine's and trainer's measured at LLaVA-1.6-Mistral-7B shape (bench/
// RESULTS.md) on an H200 and an H100; other model sizes scale by their language-model parameters,
// other image modes by their positions. Estimates of generation stages are upper bounds: every
// answer is counted at its token limit (real answers stop at EOS).
#pragma once

#include <string>

#include "stic/method/pipeline.h"
#include "stic/method/recipe.h"

namespace stic {

struct PlanOptions {
  std::string card;  // "H200" | "H100" | "" = the device's (nvidia-smi), when the recipe runs on cuda
  int64_t expect_tokens = 0;  // > 0: estimate generated answers at this length (not above their limits)
};

struct PlanResult {
  std::string text;  // what --dry-run prints
  int problems = 0;  // inputs that would stop the run
};

PlanResult plan_pipeline(const Recipe& r, const PipelineOptions& o, const PlanOptions& p);

}  // namespace stic
