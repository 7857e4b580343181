// stic/method/prefgen.h — `stic generate-pref`: STIC's self-constructed preference pairs.
//
// For every unlabeled image the model answers two requests through the batched engine:
//   chosen   = the step-by-step ("preferred") prompt on the clean image;
//   rejected = a hallucination prompt on the clean image (probability p_bad_prompt), or the
//              pair's normal prompt on a corrupted image (lowres or jitter, applied in memory
//              by the engine; --save-corrupted writes them for a person to look at).
// The two requests of an image are adjacent, so when both see the clean image (a hallucination
// prompt) they share its encoding and its prefix KV.
// Everything random comes from draw_pref(seed, image id) (pref_data.h): the same data whatever
// the batch size, shard or order. Sampling seeds are per request (seed, "ID#chosen"/"ID#rejected").
//
//   OUT                  one pair per image (pref_data.h), written when both sides are done
//   OUT.errors.jsonl     {"id", "image", "reason", "message"} per skipped image: missing,
//                        decode (zero-byte, truncated, not an image), duplicate (an image list
//                        naming an id twice: "duplicate_of", the later line skipped). A re-run
//                        does not retry them while the id names the same file. A request that
//                        fails for another reason (a prompt the template cannot take) is not
//                        listed: the run fails naming it, and a re-run retries.
//   OUT.summary.json     pairs by kind, skipped by reason, answer lengths, token-limit hits,
//                        degenerate pairs (chosen == rejected), this run's images/s
// Re-running skips images already in OUT or errors.jsonl; a kill -9 loses at most the pairs
// being generated (a torn last line is cut on the next run).
//
// Paper by default; `released_compat` reproduces the released code (reference/stic-method.md
// section 7, items 1-2): the stored user turn has no "<image>" and the corruption is drawn and
// recorded but not applied.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/infer/batch_job.h"

namespace stic {

struct PrefGenOptions {
  std::string model, adapter, device = "cpu", dtype = "auto", vision_tower;
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  std::string image_dir, image_list, out, prompts, save_corrupted;
  std::string stats;  // write the engine's counters and timings as JSON (benchmarks)
  double p_bad_prompt = 0.5;
  std::vector<std::string> corruptions = {"lowres", "jitter"};
  float temperature = 0.2f, top_p = 1.0f;
  int top_k = 0, max_new_tokens = 1024;
  std::string template_name = "auto";
  std::string image_mode;  // "" = the model's; pad | anyres | crop
  int batch_size = 16;
  uint64_t seed = 0;
  Shard shard;
  bool released_compat = false;
  bool ignore_eos = false;  // benchmarks: fixed answer lengths
  bool progress = true;
};

struct PrefGenResult {
  int64_t images = 0;       // images listed (this shard)
  int64_t resumed = 0;      // already in OUT or errors.jsonl
  int64_t written = 0;      // pairs written this run
  int64_t skipped = 0;      // images skipped this run (errors.jsonl)
  double seconds = 0;       // generation time this run
  EngineStats stats;        // the engine's counters this run
  nlohmann::json summary;   // OUT.summary.json
};

PrefGenResult run_generate_pref(const PrefGenOptions& o);

// The summary of a pair file and its errors file (what OUT.summary.json holds, minus this_run).
nlohmann::json summarize_pairs(const std::string& pairs_path, const std::string& errors_path);

}  // namespace stic
