// stic/method/pref_data.h — STIC's stage-1 preference data: the prompt sets, the per-image
// random draw, and reading / converting pair files.
//
// Prompt file (JSON; recipes/prompts/stic.json is the paper's sets, the built-in default):
//   {"preferred": "<the step-by-step prompt>", "normal": [8 prompts], "hallucination": [8 prompts]}
//
// Pair record (one JSON object; a file is JSONL or a JSON list, as the published
// stic-coco-preference-6k file):
//   {"id", "image", "image_corruption", "hallu_prompt",
//    "chosen": [{"role": "user", "content"}, {"role": "assistant", "content"}], "rejected": [...],
//    ... (stic's own fields: kind, corruption, prompts, sampling, per side info)}
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/image/image.h"

namespace stic {

struct PrefPrompts {
  std::string preferred;
  std::vector<std::string> normal, hallucination;
};
// The paper's prompts (reference/stic-method.md section 2).
const PrefPrompts& default_pref_prompts();
// A prompt file; throws stic::Error naming the file and the field that is wrong.
PrefPrompts load_pref_prompts(const std::string& path);

// Everything random about one image, from (seed, image id) alone: whether the rejected answer
// comes from a hallucination prompt (else from a corrupted image), which prompts, which
// corruption with which parameters. Every draw is made whatever the branch, so the same image
// gets the same choices at any batch size, shard count or order.
struct PrefDraw {
  bool bad_prompt = false;
  int stored_prompt = 0;   // index into normal: the pair's user turn (and the corrupted-image query)
  int hallu_prompt = 0;    // index into hallucination
  ImageTransform corruption;  // the corrupted-image branch's transform (drawn always)
};
// corruptions: names among "lowres", "jitter" (each equally likely). Throws on an unknown name.
PrefDraw draw_pref(uint64_t seed, const std::string& image_id, double p_bad_prompt,
                   const std::vector<std::string>& corruptions, const PrefPrompts& prompts);

struct PrefRecord {
  nlohmann::json j;
  std::string where;  // "FILE: line N" or "FILE: element N"
};
// Reads pairs from JSONL or a JSON list. A record that is not an object with "chosen" and
// "rejected" message lists goes to `on_bad(where, why)` and is left out; a file that is neither
// JSONL nor a JSON list is a stic::Error.
std::vector<PrefRecord> read_pref_records(const std::string& path,
                                          const std::function<void(const std::string&, const std::string&)>& on_bad);
// The record's id: "id" if present, else "image".
std::string pref_record_id(const nlohmann::json& j);

// stic convert: merges `inputs` (JSONL or JSON lists, e.g. shard files) into `out`, as a JSON
// list when out ends in ".json", else JSONL. A duplicate id is a stic::Error naming both places.
// Returns the number of records written.
int64_t convert_pref_files(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace stic
