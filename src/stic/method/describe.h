// stic/method/describe.h — `stic describe`: STIC stage 2's image descriptions (reference/
// stic-method.md section 4), and the description step of describe-and-respond.
//
// The model (normally base + the stage-1 adapter, merged for inference) describes every distinct
// image of an instruction set once, through the batched engine: a normal prompt drawn per image
// from (seed, image) alone (the same whatever the batch size, shard or order), T = 0.2, up to
// 1024 new tokens — or one fixed prompt for every image (`prompt`, DaR's). Records that share an
// image share its description.
//
//   OUT            one line per record id, in the order descriptions finish:
//                  {"id", "image", "prompt", "description", "finish_reason"}
//                  or {"id", "image", "error"} when the image is missing or does not decode
//                  (not retried by a re-run). Append-only and flushed: a kill -9 loses at most
//                  the line being written, a re-run skips the ids already there.
//   OUT.summary.json   records, images, described, failed, skipped (no image, duplicate id),
//                  token-limit hits, this run's images/s
// `data` is a LLaVA JSON list / JSONL ({"id", "image", ...}; records without an image are
// skipped and counted, a repeated id is skipped and named) or a plain list of image paths (one
// per line; the path is the id). Sharding (`shard`) splits by image, so an image is described
// by one process only.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "stic/infer/batch_job.h"

namespace stic {

struct DescribeOptions {
  std::string model, adapter, device = "cpu", dtype = "auto", vision_tower;
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  std::string data, image_dir, out;
  std::string prompts;  // prompt file (method/pref_data.h); its "normal" set is drawn from
  std::string prompt;   // one prompt for every image instead (DaR); "" = draw per image
  float temperature = 0.2f, top_p = 1.0f;
  int top_k = 0, max_new_tokens = 1024;
  std::string template_name = "auto";
  std::string image_mode;  // "" = the model's; pad | anyres | crop
  int batch_size = 16;
  uint64_t seed = 0;
  Shard shard;
  bool progress = true;
  bool ignore_eos = false;  // always max_new_tokens (benchmarks)
  std::string stats;        // engine counters and timings as JSON (benchmarks); "" = none
};

struct DescribeResult {
  int64_t records = 0, images = 0;  // records with an image and distinct images (this shard)
  int64_t resumed = 0;              // records already in OUT
  int64_t described = 0;            // images described this run
  int64_t failed = 0;               // images that could not be read (error lines)
  int64_t skipped = 0;              // records without an image, or with a repeated id
  double seconds = 0;
  EngineStats stats;
  nlohmann::json summary;
};

// The normal prompt STIC draws for an image: index into the prompt set, from (seed, image).
int describe_prompt_index(uint64_t seed, const std::string& image, size_t n_prompts);

DescribeResult run_describe(const DescribeOptions& o);

}  // namespace stic
