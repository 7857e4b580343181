// Flags that several verbs share, declared once: the model to load and how to sample.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "stic/model/loaded_model.h"

namespace stic::app {

// --model DIR [--adapter DIR] [--device] [--dtype] [--vision-tower]
struct ModelFlags {
  std::string model, adapter, device = "cpu", dtype = "auto", vision_tower;
};
void add_model_flags(CLI::App* c, ModelFlags& f);
// The model for inference: --adapter (if any) merged into the weights (model/loaded_model.h).
std::unique_ptr<LoadedModel> load_for_inference(const ModelFlags& f, const std::string& verb);

// --template --max-new-tokens --temperature --top-p [--top-k] --seed
struct SamplingFlags {
  std::string tmpl = "auto";
  int max_new_tokens = 512, top_k = 0;
  float temperature = 0.0f, top_p = 1.0f;
  uint64_t seed = 0;
};
void add_sampling_flags(CLI::App* c, SamplingFlags& s, const std::string& seed_help, bool with_top_k);

}  // namespace stic::app
