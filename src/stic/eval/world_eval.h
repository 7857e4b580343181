// stic/eval/world_eval.h — `stic eval --benchmark world`: the model answers every request of a
// built-in world's eval set (WORLD/eval/requests.jsonl) with the batched engine, then the answers
// are scored against the ground truth (world/metrics.h).
//
//   OUT/predictions.jsonl   {"id","text","token_ids","num_input_tokens","num_image_tokens","finish_reason"} per request,
//                           appended and flushed; a re-run skips the ids already there (resume)
//   OUT/per_item.jsonl      one scored record per request (score_world)
//   OUT/summary.json        the metrics; OUT/summary.md the table (also printed)
//   OUT/eval_config.json    what was run
#pragma once

#include <cstdint>
#include <string>

#include "stic/world/metrics.h"

namespace stic {

struct WorldEvalOptions {
  std::string model, adapter, world, out;
  std::string device = "cpu", dtype = "auto";
  int batch_size = 32;
  int max_new_tokens = 160;
  bool progress = true;
};

struct WorldEvalResult {
  world::WorldScores scores;
  int64_t generated = 0, resumed = 0, failed = 0;
  double gen_seconds = 0;
};

// Throws stic::Error (located) on a missing world, a bad model or malformed predictions.
WorldEvalResult run_world_eval(const WorldEvalOptions& o);

}  // namespace stic
