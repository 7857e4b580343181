// stic/method/pref_data.cpp — see pref_data.h.
#include "stic/method/pref_data.h"

#include "stic/text/stic_prompts.h"


#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/rng.h"

namespace stic {

const PrefPrompts& default_pref_prompts() {
  static const PrefPrompts p = {stic_step_by_step_prompt(), stic_normal_prompts(), stic_hallucination_prompts()};
  return p;
}

PrefPrompts load_pref_prompts(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected an object {\"preferred\", \"normal\", \"hallucination\"}");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "preferred" && it.key() != "normal" && it.key() != "hallucination")
      fail(path, ": unknown key \"", it.key(), "\" (valid: preferred, normal, hallucination)");
  PrefPrompts p;
  if (!j.contains("preferred") || !j["preferred"].is_string() || j["preferred"].get<std::string>().empty())
    fail(path, ": \"preferred\" must be a non-empty string");
  p.preferred = j["preferred"];
  for (const char* k : {"normal", "hallucination"}) {
    if (!j.contains(k) || !j[k].is_array() || j[k].empty()) fail(path, ": \"", k, "\" must be a non-empty list of strings");
    auto& dst = std::string(k) == "normal" ? p.normal : p.hallucination;
    for (size_t i = 0; i < j[k].size(); ++i) {
      if (!j[k][i].is_string() || j[k][i].get<std::string>().empty())
        fail(path, ": \"", k, "\"[", i, "] must be a non-empty string");
      dst.push_back(j[k][i]);
    }
  }
  return p;
}

PrefDraw draw_pref(uint64_t seed, const std::string& image_id, double p_bad_prompt,
                   const std::vector<std::string>& corruptions, const PrefPrompts& prompts) {
  if (corruptions.empty() && p_bad_prompt < 1.0) fail("generate-pref: no corruption kinds and --p-bad-prompt < 1");
  SplitMix64 rng(hash_id(seed, image_id));
  // a fixed sequence of draws, whatever they decide
  const double u_bad = rng.uniform();
  const uint64_t u_stored = rng.next(), u_hallu = rng.next(), u_kind = rng.next();
  const double u_bright = rng.uniform(), u_hue = rng.uniform();
  PrefDraw d;
  d.bad_prompt = u_bad < p_bad_prompt;
  d.stored_prompt = static_cast<int>(u_stored % prompts.normal.size());
  d.hallu_prompt = static_cast<int>(u_hallu % prompts.hallucination.size());
  if (!corruptions.empty()) {
    const std::string& kind = corruptions[u_kind % corruptions.size()];
    if (kind == "lowres") {
      d.corruption.kind = ImageTransform::Kind::LowRes;
      d.corruption.short_side = 20;
    } else if (kind == "jitter") {  // torchvision ColorJitter(brightness=.5, hue=.3)
      d.corruption.kind = ImageTransform::Kind::Jitter;
      d.corruption.brightness = static_cast<float>(0.5 + u_bright);
      d.corruption.hue = static_cast<float>(-0.3 + 0.6 * u_hue);
    } else {
      fail("generate-pref: unknown corruption '", kind, "' (available: lowres, jitter)");
    }
  }
  return d;
}

}  // namespace stic
