// stic/world/world.h — `stic world`: builds the built-in world into a folder.
//
//   DIR/world.json                    manifest: format, version, preset, seed, sizes, complete
//   DIR/images/{base,unlabeled,stage2,eval}/NAME.png    the four disjoint image pools
//   DIR/scenes/{pool}/NAME.json       the scene graph of each image (ground truth)
//   DIR/data/base_train.json          LLaVA instruction JSON: captions, descriptions, QA (base model)
//   DIR/data/eval_sft.json            LLaVA instruction JSON on the eval images (held-out loss)
//   DIR/data/{base,eval}_pretrain.json  one grounded caption per image (pretraining stage)
//   DIR/data/stage2_sft.json          LLaVA instruction JSON: the stage-2 instruction subset
//   DIR/data/unlabeled_images.txt     stage-1 images (paths relative to DIR/images), no labels
//   DIR/eval/requests.jsonl           {"id","image","prompt"} for `stic generate` (all eval tasks)
//   DIR/eval/mmbench.tsv              MMBench-style multiple choice (base64 PNG images)
//   DIR/eval/pope.jsonl, pope_{random,popular,adversarial}.jsonl    POPE yes/no questions
//   DIR/gt/eval_answers.jsonl         answers of eval/requests.jsonl (what score_world reads)
//   DIR/gt/descriptions.jsonl         reference descriptions of the eval images
//   DIR/gt/{pool}_scenes.jsonl        all scene graphs of a pool, one per line
//   DIR/tokenizer/corpus.txt          the world's text; tokenizer trained on it by spm_train
//   DIR/model/                        llava-hf folder: config.json, tokenizer.model,
//                                     tokenizer_config.json, preprocessor_config.json, ...
//                                     (model.safetensors, the random init, is written by the app)
// Images and scene files are written atomically, one pair at a time; a re-run skips every image
// whose PNG and scene file exist and rewrites the index files (atomically) at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/world/scene.h"

namespace stic::world {

constexpr int kWorldVersion = 2;  // 2: object centres snap to the ViT patch grid (every preset)

struct ModelShape {
  int vision_hidden = 64, vision_layers = 2, vision_heads = 2, vision_intermediate = 128, patch = 8;
  int text_hidden = 64, text_layers = 2, text_heads = 2, text_intermediate = 160;
  int spm_vocab = 512;        // SentencePiece pieces; <image> gets id spm_vocab
  int max_positions = 1024;
};

struct Preset {
  std::string name, purpose;
  SceneParams scene;
  int n_base = 0, n_unlabeled = 0, n_stage2 = 0, n_eval = 0;
  int base_qa_turns = 3;    // QA turns per base record (after its description turn)
  ModelShape model;
};

const std::vector<Preset>& presets();
// The named preset; an unknown name is a stic::Error listing the valid ones.
const Preset& find_preset(const std::string& name);

struct WorldOptions {
  std::string out;
  std::string preset = "world-tiny";
  uint64_t seed = 0;
  bool progress = true;
  int threads = 0;  // rendering threads; 0 = one per core
  std::string spm_train = "spm_train";  // the SentencePiece trainer (Debian package sentencepiece)
};

struct WorldSummary {
  std::string out, model_dir;
  int images_total = 0, images_rendered = 0, images_skipped = 0;
  bool tokenizer_trained = false;
  double seconds = 0;
};

// Builds (or completes) the world in opts.out: everything except model/model.safetensors.
WorldSummary build_world(const WorldOptions& opts);

// The pools in order, their image-name prefixes and sizes for a preset.
const std::vector<std::string>& pool_names();  // base, unlabeled, stage2, eval
int pool_size(const Preset& p, const std::string& pool);
std::string image_name(const std::string& pool, int index);  // "eval_000012"
// The scene of image `index` of `pool` (deterministic in seed, preset, pool, index).
Scene world_scene(const Preset& p, uint64_t seed, const std::string& pool, int index);

// The llava-hf config.json of a preset's tiny model (exposed for tests).
nlohmann::json model_config_json(const Preset& p);

std::string base64_encode(const std::string& bytes);

}  // namespace stic::world
