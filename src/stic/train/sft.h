// stic/train/sft.h — supervised fine-tuning on LLaVA conversation data (stage 2 of STIC).
//
// Data: a JSON list (LLaVA's format) or JSONL of
//   {"id", "image"?, "conversations": [{"from": "human"|"gpt", "value"}, ...]}
// ("user"/"assistant" are accepted as roles). As LLaVA's preprocess does, a leading "gpt" turn
// and a trailing "human" turn are dropped; with an image, the "<image>" marker is moved to the
// front of the first human turn ("<image>\n" + rest, stripped), or added there when absent
// (SftOptions::image_marker "keep": a marker stays where the text has it).
//
// Labels: assistant tokens only, masked by byte spans (train/collator.h).
//
// Bad records are skipped, counted and reported (never fatal): no assistant turn, "<image>"
// with no image field, an image file that is missing or does not decode, more than one
// "<image>", a conversation that does not alternate. Over-long samples are truncated at the
// end (answer tokens go first, never the image); one whose answers would all be cut is skipped.
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
#include "stic/train/setup.h"
#include "stic/train/skip_log.h"
#include "stic/train/trainer.h"

namespace stic {

struct SftOptions {
  std::string template_name = "auto";
  std::string image_dir;           // image paths are relative to it
  // where the image goes in its turn: "front" (LLaVA's preprocess_multimodal moves the marker to
  // the start, "<image>\n" + text) or "keep" (where the text puts it, as HF's processors do)
  std::string image_marker = "front";
  int64_t max_length = 2048;       // decoder positions, image features included
  std::string errors_path;         // errors.jsonl of skipped records ("" = none)
  int max_messages = 20;           // per-record messages on stderr before going quiet
};

struct SftExample {
  int64_t record = 0;      // index in the data file (0-based)
  std::string id;
  std::string image;       // full path, "" = text only
  EncodedChat chat;
};

// Parsed LLaVA records -> (id, image field, turns). Exposed for tests; the SftTask uses it.
struct SftRecord {
  int64_t record = 0;
  std::string id, image;
  std::vector<Turn> turns;
};
// Reads the file; per-record problems go to `bad` as (record, id, reason) and the record is
// left out. A file that is not JSON/JSONL at all is a stic::Error.
std::vector<SftRecord> read_llava_records(const std::string& path,
                                          std::vector<std::tuple<int64_t, std::string, std::string>>* bad);

using SftBatch = CollatedBatch;

class SftTask {
 public:
  SftTask(LoadedModel& model, const std::string& data_path, const SftOptions& opts);

  const std::vector<SftExample>& examples() const { return examples_; }
  std::vector<int64_t> lengths() const;  // for length grouping: text tokens + image tokens estimate
  // Builds a batch (images decoded and encoded, truncation applied). `images` overrides the
  // decoded image of an example (tests feed HF's pixel values). Bad examples are skipped.
  SftBatch build_batch(const std::vector<int64_t>& idx, const std::map<int64_t, ImageInput>* images = nullptr);
  // Mean next-token cross-entropy over the label positions of the batch (HF's loss).
  torch::Tensor loss(const SftBatch& b);
  MicroBatchResult micro(const std::vector<int64_t>& idx);

  // Held-out evaluation (no gradients, dropout off): the label-token-weighted mean loss over the
  // first `max_examples` usable examples (0 = all), and the same loss when every example with an
  // image is shown the image of the next such example instead (a mismatched image). Their
  // difference, `image_gain` (nats per answer token), is how much the model's answers rest on
  // the image: ~0 for a model that ignores it.
  struct EvalResult {
    double loss = 0.0, loss_other_image = 0.0, image_gain = 0.0;
    int64_t examples = 0, label_tokens = 0;
  };
  EvalResult evaluate(int64_t max_examples, int batch_size);

  // Summary: counts by reason ("no_assistant_turn", "image_without_file", "image_missing",
  // "image_corrupt", "multiple_images", "bad_turns", "too_long", "truncated_records"),
  // plus "truncated_tokens".
  const std::map<std::string, int64_t>& counts() const { return log_.counts(); }
  std::string summary() const;

 private:
  void skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message);
  std::string where(const SftExample& ex) const;  // "DATA: record N (id X)" for messages
  // Decodes example i's image into *out; a corrupt one skips the example (counted, reported).
  bool load_image_or_skip(int64_t i, ImageInput* out);
  LoadedModel& model_;
  SftOptions opts_;
  Collator collator_;
  std::string data_path_;
  TemplateKind kind_;
  std::vector<SftExample> examples_;
  SkipLog log_;
  std::set<int64_t> bad_examples_;     // example indices skipped at batch time
  std::set<int64_t> truncated_;        // example indices counted as truncated
  std::map<int64_t, ImageInput> eval_images_;  // decoded once for evaluate()
};

// ---------------------------------------------------------------- stic train-sft
// Supervised fine-tuning of a model (LoRA, a continued adapter, or in full) on LLaVA records:
// OUTPUT gets the weights (adapter or model folder), checkpoints, metrics.jsonl (with held-out
// loss / image gain when eval_data is set), errors.jsonl of skipped records and train_config.json.
struct SftRunOptions {
  std::string model, data, image_dir, output_dir, eval_data, vision_tower;
  std::string device = "cpu", dtype = "auto";
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  std::string template_name = "auto", image_marker = "front";
  std::string image_mode;  // "" = the model's; pad | anyres | crop (the released training: pad)
  int64_t max_length = 2048;
  int64_t eval_every = 0, eval_examples = 128;  // held-out evaluation every N steps (0: total/10)
  TrainSetupOptions setup;
  TrainConfig train;  // output_dir is set from this struct's
  SftRunOptions() {   // the released stage-2 settings: LoRA r 128, alpha 256, dropout 0.05, lr 2e-5
    setup.lora.r = 128;
    setup.lora.alpha = 256;
    setup.lora.dropout = 0.05;
    train.lr = 2e-5;
  }
};
struct SftRunResult {
  TrainResult train;
  std::string weights;  // the folder holding the final weights (OUTPUT, or the last checkpoint when stopped early)
  std::string data_summary;
};
SftRunResult run_sft(const SftRunOptions& o);

}  // namespace stic
