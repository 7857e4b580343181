// stic/method/pref_data.h — STIC's stage-1 preference data: the prompt sets and the per-image
// random draw (the pair files themselves: io/pref_records.h).
//
// Prompt file (JSON; recipes/prompts/stic.json is the paper's sets, the built-in default):
//   {"preferred": "<the step-by-step prompt>", "normal": [8 prompts], "hallucination": [8 prompts]}
//
#pragma once

#include <cstdint>
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

}  // namespace stic
