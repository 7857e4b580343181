// stic/method/recipe.h — YAML recipes for `stic pipeline` (docs/recipes.md).
//
// A recipe names a world preset and the settings of each stage of the base-model pipeline:
//
//   name: world-tiny
//   threads: 2                  # torch threads of every stage (0 = all cores)
//   device: cpu                 # cpu | cuda | cuda:N
//   dtype: auto                 # auto | fp32 | bf16
//   world:    {preset: world-tiny, seed: 0}
//   vision:   {max_steps: 0, ...}     # optional: the vision tower alone first (stic train-vision)
//   pretrain: {max_steps: 0, ...}     # optional first pass on data/base_pretrain.json (grounded captions)
//   base:     {max_steps: 400, batch_size: 16, lr: 2.0e-3, freeze_vision: false, ...}   # train-sft --full on data/base_train.json
//   instruct: {max_steps: 0, ...}                                 # optional second pass on data/stage2_sft.json
//   eval:     {batch_size: 32, max_new_tokens: 160}
//   pref:     {max_new_tokens: 160, batch_size: 64, temperature: 0.2, p_bad_prompt: 0.5, seed: 0}
//   dpo:      {max_steps: 0, lora_r: 16, lora_alpha: 32, beta: 0.1, alpha: 0.0009765625, ...}
//             # STIC stage 1 on the base model: generate-pref on the unlabeled pool, train-dpo
//             # (a LoRA adapter), eval of base + adapter; dpo.max_steps 0 (the default) skips it
//   describe: {max_new_tokens: 160, batch_size: 64, temperature: 0.2, seed: 0}
//   sft2:     {max_steps: 0, lr: 2.0e-5, lora_dropout: 0.05, ...}
//             # STIC stage 2 after stage 1: describe the stage-2 pool with base + stage-1 adapter,
//             # infuse the descriptions into data/stage2_sft.json, train-sft --adapter continuing the
//             # stage-1 adapter; sft2.max_steps 0 (the default) skips it
//   eval:     {..., dar: false, dar_max_new_tokens: 160}
//             # dar: every model evaluated is evaluated again with describe-and-respond
//   report:   {examples: 6}
//
// A recipe on a checkpoint of its own names it instead of a world (and has no world, vision,
// pretrain, base or instruct section): model: {path}, pref: {image_dir | image_list, limit, ...},
// describe: {data, image_dir, limit, ...}, benchmarks: {NAME: {data, annotations, image_dir, ...}}
// (recipes/stic-llava16-mistral7b.yaml; docs/recipes.md).
//
// Unknown keys are an error naming the file, line and the valid keys: a typo never silently
// falls back to a default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stic {

struct TrainStage {
  int64_t max_steps = 0;  // 0 = skip the stage (pretrain, instruct) / error (base)
  int batch_size = 16, grad_accum = 1, log_every = 10, save_every = 0;
  double lr = 1e-3, warmup_ratio = 0.03, weight_decay = 0.0, max_grad_norm = 1.0;
  std::string schedule = "cosine";
  int64_t max_length = 1024;
  uint64_t seed = 0;
  bool freeze_vision = false;     // keep the vision tower as it is (train-sft --mm-vision-tower-lr 0)
  bool freeze_projector = false;  // keep the projector as it is (train-sft --mm-projector-lr 0)
  // less padding: "false", "true" (train-sft --group-by-length, HF's sampler: whole batches of
  // similar length) or "step" (--sort-within-step: each step's examples sorted by length before
  // they are cut into grad_accum micro-batches; the steps see the same examples as with "false")
  std::string group_by_length = "false";
  std::string image_marker = "front";  // train-sft --image-marker: front (LLaVA) or keep (in place)
  double epochs = 0;                   // > 0 with max_steps 0: run this many epochs (the paper's "1 epoch")
  bool gradient_checkpointing = false; // --gradient-checkpointing (7B stages on long sequences)
  bool runs() const { return max_steps > 0 || epochs > 0; }
};

// STIC stage 1 in the pipeline: the preference data (stic generate-pref on the world's unlabeled
// pool with the base model) and the DPO run on it (stic train-dpo, LoRA on the base model).
struct PrefStage {
  int max_new_tokens = 160, batch_size = 64;
  double temperature = 0.2, p_bad_prompt = 0.5;
  uint64_t seed = 0;
  // a recipe on an external model (model.path): the unlabeled images, and how many of them
  std::string image_dir, image_list;
  int64_t limit = 0;  // > 0: this many images, a seeded sample (pool_sample), listed in pref/images.txt
  std::string template_name, image_mode;  // "" = the model's
  bool ignore_eos = false;  // every answer max_new_tokens long (benchmarks)
};
struct DpoStage {
  TrainStage train;  // max_steps 0: no STIC stages
  int64_t lora_r = 16;
  double lora_alpha = 32, beta = 0.1, alpha = 1.0 / 1024;
  std::string alpha_norm = "sum", loss_type = "sigmoid";
  std::string template_name, image_mode;  // "" = the model's (the released training: vicuna_v1, pad)
  // iterative self-training (beyond the paper): rounds 2..3 build new pairs with the newest
  // adapter and continue it with DPO (the reference stays the base model: adapter disabled)
  int rounds = 1;
};

// STIC stage 2 in the pipeline: the stage-1 model describes the stage-2 pool (stic describe), the
// descriptions are infused into its instruction records (stic infuse), and train-sft continues
// the stage-1 adapter on them.
struct DescribeStage {
  int max_new_tokens = 160, batch_size = 64;
  double temperature = 0.2;
  uint64_t seed = 0;
  // a recipe on an external model: the instruction set (LLaVA JSON / JSONL) and its images
  std::string data, image_dir;
  int64_t limit = 0;  // > 0: this many records, a seeded sample, written to describe/records.json
  std::string template_name, image_mode;
  bool ignore_eos = false;
};
struct Sft2Stage {
  TrainStage train;  // max_steps 0: no stage 2
  double lora_dropout = 0.05;
  std::string template_name, image_mode;  // "" = the model's
};

// A real benchmark evaluated by the eval stages of a recipe on an external model (stic eval
// --benchmark NAME --data ... --annotations ... --image-dir ...).
struct BenchmarkSpec {
  std::string name, data, annotations, image_dir, split;
  int64_t limit = 0;
  int max_new_tokens = 0;  // 0 = the benchmark's
  bool circular = true;
};

struct Recipe {
  std::string path, name;
  int threads = 0;
  std::string device = "cpu", dtype = "auto";
  std::string image_backend;  // pil | torchvision for every stage; "" = each model's (stic --image-backend)
  std::string world_preset = "world-tiny";
  // model: {path}: STIC on this checkpoint (LLaVA-1.5 / 1.6, either layout) instead
  // of a world's base model: the world and base-model stages do not run, pref / describe name
  // their data, the eval stages run `benchmarks` (docs/paper-run.md)
  std::string model_path;
  std::vector<BenchmarkSpec> benchmarks;
  bool external() const { return !model_path.empty(); }
  uint64_t world_seed = 0;
  // vision: `stic train-vision` (the tower alone on the world's scene graphs) before pretrain;
  // max_steps 0 (the default) skips it. Keys: max_steps, batch_size, lr, warmup_ratio,
  // weight_decay, max_grad_norm, schedule, log_every, save_every, seed.
  TrainStage vision, pretrain, base, instruct;
  int eval_batch_size = 32, eval_max_new_tokens = 160;
  bool eval_dar = false;           // also evaluate every model with describe-and-respond
  int eval_dar_max_new_tokens = 160;
  PrefStage pref;
  DpoStage dpo;
  DescribeStage describe;
  Sft2Stage sft2;
  std::string eval_template;  // "" = the model's
  bool stic() const { return dpo.train.runs(); }
  bool stage2() const { return stic() && sft2.train.runs(); }
  int report_examples = 6;

  nlohmann::json to_json() const;  // the resolved recipe (written to WORKDIR/recipe.json)
};

// Parses a recipe file; throws stic::Error "FILE:LINE: ..." on unknown keys or bad values.
// `overrides` ("section.key=value", e.g. "dpo.alpha=0") replace or add values before checking.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace stic
