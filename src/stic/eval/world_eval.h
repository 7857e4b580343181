// stic/eval/world_eval.h — `stic eval --benchmark world`: the model answers every request of a
// built-in world's eval set (WORLD/eval/requests.jsonl) with the batched engine, then the answers
// are scored against the ground truth (world/metrics.h).
//
//   OUT/predictions.jsonl   {"id","text","token_ids","num_input_tokens","num_image_tokens","finish_reason"} per request,
//                           appended and flushed; a re-run skips the ids already there (resume)
//   OUT/per_item.jsonl      one scored record per request (score_world)
//   OUT/summary.json        the metrics; OUT/summary.md the table (also printed)
//   OUT/eval_config.json    what was run
//
// With `dar` (describe-and-respond, reference/stic-method.md section 5) each distinct image is
// first described (greedy, `dar_prompt`; eval/dar.h, into OUT/dar_descriptions.jsonl,
// resumable, by `dar_model` + `dar_adapter` when given, else the evaluated model), then every
// question on it is asked with the description infused as stage 2 trains it:
// "<image>\nImage description:\n{desc}\n\n{question}" (text/stic_prompts.h). A question whose
// image could not be described is asked as it is.
#pragma once

#include <cstdint>
#include <string>

#include "stic/world/metrics.h"

namespace stic {

struct WorldEvalOptions {
  std::string model, adapter, world, out;
  std::string device = "cpu", dtype = "auto";
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  int batch_size = 32;
  int max_new_tokens = 160;
  bool progress = true;
  bool dar = false;
  std::string dar_prompt;  // "" = DaR's (text/stic_prompts.h, stic_dar_prompt)
  int dar_max_new_tokens = 1024;
  std::string dar_model, dar_adapter;  // "" = the evaluated model and adapter
};

struct WorldEvalResult {
  world::WorldScores scores;
  int64_t generated = 0, resumed = 0, failed = 0;
  double gen_seconds = 0;
  int64_t dar_described = 0;   // images described this run (DaR)
  double dar_seconds = 0;
};

// Throws stic::Error (located) on a missing world, a bad model or malformed predictions.
WorldEvalResult run_world_eval(const WorldEvalOptions& o);

}  // namespace stic
