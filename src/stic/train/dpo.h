// stic/train/dpo.h — stage 1 of STIC: regularised DPO on preference pairs (stic train-dpo).
//
// Data: preference pairs (io/pref_records.h: our JSONL, a JSON list, the published STIC file):
//   {"id"?, "image", "chosen": [{"role": "user", "content"}, {"role": "assistant", "content"}],
//    "rejected": [...]}
// Each side is rendered with the chat template and masked as SFT is (train/collator.h: labels on
// the answers, EOS included). Both sides use the clean image of the record, whatever produced
// the rejected answer, and share one image encoding in the batch.
//
// A micro-batch of P pairs is one batch of 2P sequences (chosen rows, then rejected rows). The
// policy is the model as it trains (base + LoRA); the reference is the same network with every
// adapter disabled (model/linear.h AdapterDisabledGuard: no second copy of the weights), or
// log-probs computed once before training (precompute_reference: a cache file keyed by a hash
// of record + model + adapter + settings). The loss is train/dpo_loss.h's.
//
// Bad pairs are skipped, counted per reason and logged (errors.jsonl, train/skip_log.h):
// empty_side (an empty answer), identical_sides (with skip_identical; otherwise kept and counted
// as identical_kept), bad_turns, image_without_file, multiple_images, image_missing,
// image_corrupt, too_long (a side whose prompt and image alone exceed max_length). A side longer
// than max_length is cut at the end (its answer first).
//
// Records with an image whose prompt has no "<image>" (the released STIC files) are trained
// without the image, as the released code does, and counted as no_image_marker (a warning names
// the count); add_image_marker puts "<image>\n" before their first user turn instead.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "stic/model/loaded_model.h"
#include "stic/text/template.h"
#include "stic/train/collator.h"
#include "stic/train/dpo_loss.h"
#include "stic/train/setup.h"
#include "stic/train/skip_log.h"
#include "stic/train/trainer.h"

namespace stic {

struct DpoOptions {
  std::string template_name = "auto";
  std::string image_dir;            // image paths are relative to it
  std::string image_marker = "front";  // front | keep (train/collator.h place_image_marker)
  bool add_image_marker = false;    // records with an image but no <image> in the prompt get one
  int64_t max_length = 1048;        // decoder positions per side, image features included
  bool skip_identical = false;      // skip pairs whose answers are the same text (default: keep, counted)
  // the released trainer's rejected log-prob (collator.h LogProbRule::BestOtherToken), for the
  // policy and the reference alike; off = log π(y_l|x), the paper's loss
  bool released_rejected_logps = false;
  DpoLossOptions loss;
  std::string errors_path;          // errors.jsonl of skipped pairs ("" = none)
  int max_messages = 20;
};

struct DpoPair {
  int64_t record = 0;   // index in the data file
  std::string id, image;  // image: full path, "" = text only
  std::string key;      // hash of the record and the settings: the reference cache's key
  EncodedChat chosen, rejected;
};

class DpoTask {
 public:
  // model_key: what identifies the weights the reference is (model folder, adapter, dtype, ...);
  // it goes into every pair's cache key.
  DpoTask(LoadedModel& model, const std::string& data_path, const DpoOptions& opts, const std::string& model_key = "");

  const std::vector<DpoPair>& pairs() const { return pairs_; }
  std::vector<int64_t> lengths() const;  // per pair: the longer side + image tokens (estimate)

  struct Batch {
    CollatedBatch b;                    // 2P rows: chosen of pairs[0..P), then their rejected
    std::vector<int64_t> pairs;         // the pair indices in the batch
    std::map<int64_t, ImageInput> images;  // decoded, by pair
  };
  // Decodes the images (a corrupt one skips its pair), collates both sides. `images` overrides a
  // pair's decoded image (tests feed HF's pixel values).
  Batch build_batch(const std::vector<int64_t>& idx, const std::map<int64_t, ImageInput>* images = nullptr);

  struct LogProbs {
    torch::Tensor chosen, rejected;  // (P) summed answer log-probs (fp32)
    torch::Tensor chosen_tokens;     // (P) answer tokens of the chosen side
  };
  // The policy's log-probs (differentiable), or with `reference` the adapter-disabled model's
  // (no gradients).
  LogProbs logprobs(Batch& batch, bool reference);
  // The loss and TRL's metrics of a batch; the reference from the cache when one is loaded.
  DpoLossResult loss(Batch& batch);
  MicroBatchResult micro(const std::vector<int64_t>& idx);

  // Reference log-probs of every usable pair into `path` (JSONL {"key", "id", "chosen",
  // "rejected"}), resuming a partial file (torn last line cut), then loaded: training runs the
  // policy only. Returns the number of pairs computed now.
  int64_t precompute_reference(const std::string& path, int batch_size, bool progress);
  bool has_reference_cache() const { return !ref_cache_.empty(); }

  const std::map<std::string, int64_t>& counts() const { return log_.counts(); }
  std::string summary() const;

 private:
  void skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message);
  std::string where(const DpoPair& p) const;
  std::vector<CollateItem> items_of(const Batch& bt) const;  // the batch's 2P sequences for the collator
  LoadedModel& model_;
  DpoOptions opts_;
  Collator collator_;
  std::string data_path_;
  TemplateKind kind_;
  std::vector<DpoPair> pairs_;
  SkipLog log_;
  std::set<int64_t> bad_pairs_;
  std::set<int64_t> truncated_;
  std::map<std::string, std::pair<double, double>> ref_cache_;  // key -> (chosen, rejected)
};

// ---------------------------------------------------------------- stic train-dpo
// OUTPUT gets the adapter (PEFT format), checkpoints, metrics.jsonl (TRL's metric names, pairs/s,
// MFU), dpo.svg (loss, margins, accuracies per step), errors.jsonl, train_config.json and, with
// precompute_ref, reference_logps.jsonl.
struct DpoRunOptions {
  std::string model, data, image_dir, output_dir, vision_tower;
  std::string device = "cpu", dtype = "auto", image_mode;  // image_mode "" = the model's
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  bool precompute_ref = false;
  DpoOptions dpo;
  TrainSetupOptions setup;
  TrainConfig train;
  DpoRunOptions() {  // the released stage-1 run: LoRA r 128, alpha 256, dropout off, lr 1e-7
    setup.lora.r = 128;
    setup.lora.alpha = 256;
    setup.lora.dropout = 0.0;
    train.lr = 1e-7;
  }
};
struct DpoRunResult {
  TrainResult train;
  std::string weights;
  std::string data_summary;
};
DpoRunResult run_dpo(const DpoRunOptions& o);

// An SVG of the DPO curves in OUTPUT/metrics.jsonl: loss, rewards/margins, rewards/accuracies
// against the step, one panel each. Written by run_dpo as OUTPUT/dpo.svg.
std::string dpo_curves_svg(const std::string& metrics_path);

}  // namespace stic
