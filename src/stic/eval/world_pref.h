// stic/eval/world_pref.h — `stic eval --benchmark world-pref`: how good the self-constructed
// preference pairs are, measured against the built-in world's ground truth (no peer can).
// Both answers of every pair are scored with the world's description metrics (world/metrics.h)
// against the scene graph of the pair's image; the report says how often the chosen answer
// hallucinates less than the rejected one (fewer hallucinated object mentions), overall and by
// kind (bad_prompt, lowres, jitter), with each side's precision, recall and CHAIR_i.
//
//   OUT/per_pair.jsonl   {"id", "kind", "chosen": {mentions, correct, hallucinated, ...}, "rejected": {...}}
//   OUT/summary.json, OUT/summary.md (also printed)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace stic {

struct WorldPrefOptions {
  std::string world, pairs, out;
};

struct WorldPrefResult {
  nlohmann::json summary;
  std::string markdown;
};

// Throws stic::Error (located) on a missing world or an unreadable pair file; pairs whose image
// the world does not know are counted ("unknown_images") and skipped.
WorldPrefResult score_world_pref(const WorldPrefOptions& o);

}  // namespace stic
