// stic/train/vision.h — `stic train-vision`: trains a model's vision tower alone on the built-in world's scene graphs,
// before the LLaVA stages (docs/world.md, "The vision stage"). Real LLaVAs start from a CLIP tower that
// already sees; a tower trained from random init through the language model needs more images
// than a CPU budget gives, while a direct objective teaches it in a few thousand steps.
//
// Objective (the vision probe's: docs/log.md, "2026-11-27 (commit 9400fb2)"): the tower's LLaVA features (its
// feature layer, CLS dropped as the model's select strategy says) are pooled by 9 learned queries
// (one per 3x3 grid cell, multi-head attention) into one vector per cell; two linear heads predict
// the cell's shape and colour (class 0 = empty). Loss = cross-entropy of shape and of colour at
// occupied cells + binary cross-entropy of "empty" at every cell (stic/train/cell_loss.h; labels:
// world::cell_labels). Labels come from
// WORLD/gt/base_scenes.jsonl (the base pool: the images the base model is trained on).
// Optionally the patch position embeddings start as a 2D sine-cosine table (--sincos-init), which
// lets the tower find the grid cells several times sooner.
//
// Output: OUTPUT is a complete model folder (the input model with the trained vision tower; every
// other weight unchanged) plus checkpoints, metrics.jsonl (loss, batch accuracies and held-out
// shape/colour accuracy on the eval pool) and train_config.json. The head is not part of the
// model; it lives in the checkpoints, so --resume continues exactly.
#pragma once

#include <cstdint>
#include <string>

#include "stic/train/trainer.h"

namespace stic {

struct VisionRunOptions {
  std::string model, world, output_dir, device = "cpu", dtype = "auto";
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  TrainConfig train;            // output_dir, unit and the parameter set are the run's own
  double sincos_init = 1.0;     // > 0: patch positions start as this scale x a 2D sin-cos table
  int64_t eval_every = 0;       // held-out accuracy every N steps (0: total/8) and at the end
  int64_t eval_examples = 200;  // eval-pool images for it (0: all)
  VisionRunOptions() {
    train.lr = 2e-3;
    train.batch_size = 32;
    train.max_steps = 2000;
    train.seed = 0;
  }
};
struct VisionRunResult {
  TrainResult train;
  std::string weights;  // OUTPUT, or the last checkpoint when stopped early
};
// Throws stic::Error (located) on a bad world or model.
VisionRunResult run_train_vision(const VisionRunOptions& o);

}  // namespace stic
