// stic/train/trainer.h — the training loop shared by SFT, DPO and the built-in world.
//
// The trainer owns the order of the data, the optimizer, the schedule and the checkpoints; the
// caller gives it a function that computes one micro-batch's loss (and metrics) for a list of
// example indices. One optimizer step = grad_accum micro-batches of batch_size examples; each
// micro-batch's loss is backpropagated divided by grad_accum (LLaVA/HF-trainer convention:
// mean over a micro-batch's tokens, averaged over the accumulation).
//
// Data order: epoch e visits a permutation drawn from (seed, e) by a portable generator;
// with group_by_length, HF's LengthGroupedSampler rule: megabatches of 50 * batch_size,
// each sorted by length, longest first. With sort_within_step instead, the examples of each
// optimizer step (its grad_accum micro-batches; a step that spans two epochs is sorted in its two
// parts) are sorted by length before they are cut into micro-batches: less padding, and every
// step holds the examples it would hold unsorted (HF's grouping makes whole batches of only long
// or only short records, which cost the world-tiny base stage much of its held-out loss;
// docs/world.md, "Recipes"). The data cursor is the number of micro-batches
// consumed, so a resumed run sees exactly the batches the uninterrupted run would have.
//
// Checkpoints: OUTPUT/checkpoint-<step>/ written as checkpoint-<step>.tmp then renamed, then
// OUTPUT/latest (atomic) names it. Each holds the caller's weights (save_weights: PEFT adapter
// or full model), trainer_state.safetensors (trainable parameters exactly, AdamW moments and
// masters, RNG states) and trainer_state.json (step, cursor, counters, run fingerprint).
// `resume` continues from `latest`: same weights, moments, schedule step, RNG and cursor, so
// N + resume + N steps equal 2N straight steps bit for bit on CPU.
// A non-finite loss or gradient norm stops the run (stic::Error naming the step) before the
// update is applied; the last good checkpoint is left untouched.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "stic/train/optim.h"

namespace stic {

struct TrainConfig {
  std::string output_dir;
  double lr = 2e-5;
  AdamWOptions adam;
  std::string schedule = "cosine";  // constant | linear | cosine
  double warmup_ratio = 0.03;
  int64_t warmup_steps = -1;        // >= 0 overrides warmup_ratio
  int batch_size = 1;               // examples per micro-batch
  int grad_accum = 1;               // micro-batches per optimizer step
  int64_t max_steps = -1;           // > 0 bounds the run; otherwise `epochs`
  double epochs = 1.0;
  double max_grad_norm = 1.0;       // <= 0: no clipping
  int64_t save_every = 0;           // checkpoint every N steps (0: only at the end)
  int keep_checkpoints = 2;         // older checkpoint folders are removed
  int64_t log_every = 1;
  uint64_t seed = 42;
  bool group_by_length = false;
  bool sort_within_step = false;    // (without group_by_length) sort each step's examples by length
  bool resume = false;
  int64_t stop_after = -1;          // stop (after checkpointing) at this step, as a kill would
  bool progress = true;             // progress bar on stderr (TTY: redrawn; else every log step)
  // Per-parameter learning rates: a parameter whose name starts with a prefix here gets that
  // absolute peak lr (same schedule) instead of `lr` — LLaVA's mm_projector_lr /
  // mm_vision_tower_lr. The first matching prefix wins.
  std::vector<std::pair<std::string, double>> lr_by_prefix;
  double peak_tflops = 0.0;         // > 0: log MFU against this peak
  double flops_per_token = 0.0;     // 6 * (trainable-relevant) params, for MFU
  // what MicroBatchResult::tokens counts: "tokens" (metrics "tokens" / "tokens_per_s", progress
  // "tok/s") or e.g. "images" (train-vision: "images" / "images_per_s", "img/s")
  std::string unit = "tokens";
  // "" or what MicroBatchResult::examples counts (e.g. "pairs"): metrics then also carry
  // "<example_unit>" (seen so far) and "<example_unit>_per_s", and the progress bar its rate
  std::string example_unit;
};

struct MicroBatchResult {
  torch::Tensor loss;                      // scalar to backpropagate (undefined: nothing to learn)
  int64_t tokens = 0;                      // positions fed to the model (for tokens/s)
  int64_t examples = 0;                    // examples actually used (skipped ones excluded)
  std::map<std::string, double> metrics;   // averaged over the step's micro-batches
};

struct TrainResult {
  int64_t steps = 0;                 // optimizer steps done in total (resumed ones included)
  int64_t total_steps = 0;
  double last_loss = 0.0;
  bool stopped_early = false;        // stop_after reached
  std::string last_checkpoint;
};

class Trainer {
 public:
  using MicroFn = std::function<MicroBatchResult(const std::vector<int64_t>& example_indices)>;
  using SaveFn = std::function<void(const std::string& dir)>;  // writes the user-facing weights
  // A hook called after each optimizer step (e.g. evaluation). Metrics it adds are written to
  // that step's metrics.jsonl record as given (a step with hook metrics is always logged).
  using StepHook = std::function<void(int64_t step, std::map<std::string, double>& metrics)>;

  Trainer(TrainConfig cfg, std::vector<std::pair<std::string, torch::Tensor>> params, std::vector<int64_t> lengths,
          MicroFn micro, SaveFn save);
  void set_step_hook(StepHook h) { hook_ = std::move(h); }
  // Extra fields for trainer_state.json's fingerprint (e.g. the data file): a resumed run must
  // match them.
  void set_fingerprint(std::map<std::string, std::string> f) { fingerprint_ = std::move(f); }
  // Counters the caller keeps (e.g. skipped records) saved and restored with the checkpoint.
  std::map<std::string, int64_t>& counters() { return counters_; }
  TrainResult run();

  int64_t total_steps() const { return total_steps_; }
  // The example indices of micro-batch `micro` (0-based, across epochs).
  std::vector<int64_t> micro_batch(int64_t micro);
  int64_t micro_batches_per_epoch() const { return batches_per_epoch_; }

 private:
  void save_checkpoint(int64_t step, int64_t micro, double loss);
  void load_checkpoint(int64_t* step, int64_t* micro);
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  TrainConfig cfg_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<int64_t> lengths_;
  MicroFn micro_;
  SaveFn save_;
  StepHook hook_;
  AdamW opt_;
  std::map<std::string, std::string> fingerprint_;
  std::map<std::string, int64_t> counters_;
  int64_t batches_per_epoch_ = 0, total_steps_ = 0, warmup_ = 0;
  // data parallel (io/distributed.h): rank R of W runs micro-batches [R*g, (R+1)*g) of each step's
  // g*W; gradients and step statistics are summed across the ranks before the optimizer step
  int rank_ = 0, world_ = 1;
  // (several ranks) sums gradients and the step's statistics; true when some rank had a non-finite loss
  bool sync_step(double* loss_sum, int* used, int64_t* tokens, int64_t* examples, std::map<std::string, double>* msum,
                 bool bad_loss);
  int64_t accum_global() const { return static_cast<int64_t>(cfg_.grad_accum) * world_; }
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> cached_order_;
  std::string last_checkpoint_;
  double resumed_loss_ = std::numeric_limits<double>::quiet_NaN();  // the checkpoint's last loss
};

// Writes RNG states of the CPU (and CUDA, when available) default generators and restores them.
std::map<std::string, torch::Tensor> rng_state();
void set_rng_state(const std::map<std::string, torch::Tensor>& s);

}  // namespace stic
