// Flags that several verbs share, declared once: the model to load and how to sample.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stic/model/loaded_model.h"
#include "stic/train/setup.h"
#include "stic/train/trainer.h"

namespace stic::app {

// Value checks CLI11 2.1 lacks: its Range and NonNegativeNumber let NaN through, and an unsigned
// option parses "-1" as 2^64 - 1.
const CLI::Validator& finite_number();        // a number, not nan or inf
const CLI::Validator& non_negative_integer();  // digits only (seeds)
const CLI::Validator& probability_mass();      // (0, 1] (top-p)

// --model DIR [--adapter DIR] [--device] [--dtype] [--vision-tower]
struct ModelFlags {
  std::string model, adapter, device = "cpu", dtype = "auto", vision_tower, image_backend;
};
void add_model_flags(CLI::App* c, ModelFlags& f);  // with --image-backend
// --image-backend pil|torchvision: whose image preprocessing to reproduce, for every verb that
// preprocesses images ("" = the checkpoint's: torchvision when its processor config names a
// ...Fast class, else pil).
void add_image_backend_flag(CLI::App* c, std::string& backend);
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

// Copies the model and sampling flags into a generation verb's options struct (the fields
// model, adapter, device, dtype, vision_tower, image_backend, template_name, max_new_tokens, temperature,
// top_p, top_k, seed: PrefGenOptions, DescribeOptions).
template <class Options>
void apply_generation_flags(const ModelFlags& m, const SamplingFlags& s, Options& o) {
  o.model = m.model;
  o.adapter = m.adapter;
  o.device = m.device;
  o.dtype = m.dtype;
  o.vision_tower = m.vision_tower;
  o.image_backend = m.image_backend;
  o.template_name = s.tmpl;
  o.max_new_tokens = s.max_new_tokens;
  o.temperature = s.temperature;
  o.top_p = s.top_p;
  o.top_k = s.top_k;
  o.seed = s.seed;
}

// The flags every training verb has: steps / epochs, lr, schedule, warm-up, batch, accumulation,
// clipping, weight decay, LoRA r / alpha / dropout / targets, checkpoints, resume, seed,
// gradient checkpointing, MFU peak.
void add_train_flags(CLI::App* c, TrainConfig& t, TrainSetupOptions& s);

// --recipe FILE: a flat YAML file of `flag: value` lines (flag names without "--", e.g.
// `lr: 1.0e-7`; `flag: true` for a switch) read as defaults for this verb's flags; flags given
// on the command line win. add_recipe_flag declares it; expand_recipe_args (run on argv before
// parsing) turns the file into flags. A malformed line or a repeated key is an error naming the
// file and line; a key that is no flag of the verb is CLI11's usage error.
void add_recipe_flag(CLI::App* c);
std::vector<std::string> expand_recipe_args(const std::vector<std::string>& args);

}  // namespace stic::app
