// Shared by the engine tests (torch_engine.cpp, torch_fastpaths.cpp): the parity checkpoints as
// loaded models, their manifest's requests and a mixed batch.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stic/infer/engine.h"

namespace stic_test {


inline std::string fixture(const std::string& rel) { return std::string(STIC_SOURCE_DIR) + "/tests/fixtures/" + rel; }

inline nlohmann::json manifest() {
  std::ifstream in(fixture("parity/manifest.json"));
  return nlohmann::json::parse(in);
}

inline stic::LoadedModel& runner(const std::string& name) {
  static std::map<std::string, std::unique_ptr<stic::LoadedModel>> cache;
  auto& r = cache[name];
  if (!r) {
    // STIC_PARITY_DEVICE=cuda runs these on a GPU (fp32, TF32 off: HF's greedy tokens still hold)
    stic::LoadOptions o;
    const char* d = std::getenv("STIC_PARITY_DEVICE");
    o.device = stic::parse_device(d && *d ? d : "cpu");
    r = std::make_unique<stic::LoadedModel>(fixture("parity/" + name), o);
  }
  return *r;
}

inline std::map<std::string, stic::GenResult> run(stic::LoadedModel& r, const std::vector<stic::GenRequest>& reqs,
                                           stic::EngineOptions o, stic::EngineStats* stats = nullptr) {
  std::map<std::string, stic::GenResult> out;
  stic::Engine e(r, o);
  auto st = e.run(reqs, [&](stic::GenResult& g) { out[g.id] = g; });
  if (stats) *stats = st;
  return out;
}

inline std::vector<stic::GenRequest> manifest_requests(const std::string& model, int max_new = 16) {
  std::vector<stic::GenRequest> reqs;
  const auto m = manifest();
  for (auto& c : m["cases"]) {
    if (c["model"] != model) continue;
    stic::GenRequest q;
    q.id = c["case"];
    q.image = fixture("images/" + c["image"].get<std::string>());
    q.prompt = c["user"];
    q.template_name = c["template"];
    q.max_new_tokens = max_new;
    reqs.push_back(q);
  }
  return reqs;
}

// Mixed lengths: images of different grids, text-only prompts, different max_new_tokens.
inline std::vector<stic::GenRequest> mixed_requests() {
  auto reqs = manifest_requests("next_mistral", 12);
  const char* texts[] = {"Tell me a story.", "Hi", "What is a license?"};
  int i = 0;
  for (auto t : texts) {
    stic::GenRequest q;
    q.id = "text" + std::to_string(i);
    q.prompt = t;
    q.max_new_tokens = 5 + 4 * i++;
    reqs.push_back(q);
  }
  reqs[1].max_new_tokens = 3;
  return reqs;
}

}  // namespace stic_test
