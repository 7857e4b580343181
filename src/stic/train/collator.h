// stic/train/collator.h — what every training task shares between its records and the loss:
//
//   record -> template -> ids and labels (encode_chat)   -> ChatExample
//   examples + decoded images -> image features spliced, truncated, right-padded -> CollatedBatch
//   logits + labels -> per-sequence summed log-probs and label counts (sequence_logprobs), and
//   HF's mean next-token cross-entropy (causal_lm_loss)
//
// SFT (train/sft.h) is a thin task on top; DPO puts the chosen and rejected sequences of a pair
// into one batch and reads their log-probs.
//
// Labels (loss on assistant tokens only): the conversation is rendered with the chat template
// (text/template.h) and tokenized as one text, exactly the ids the model sees; a token is a
// label when its first byte lies in an assistant answer's span: the separator before the answer
// (SentencePiece attaches it as "▁"), the answer, and its end-of-turn "</s>" (with
// mistral_instruct's " " before it). Everything else — system text, user turns, role tags,
// BOS, the image — is masked (-100). For LLaMA-style (legacy) tokenizers this is the mask
// LLaVA's preprocess_v1 / preprocess_llama_2 compute by length arithmetic; LLaVA's arithmetic
// assumes `len(tokenizer(instruction)) - 2` tokens per instruction, which is off by one for
// non-legacy tokenizers (its own "-1" patch only covers some vocabularies; a mismatch there
// masks the whole sample). stic masks by byte spans, so it is exact for both (docs/training.md).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "stic/model/loaded_model.h"
#include "stic/text/template.h"

namespace stic {

struct EncodedChat {
  std::vector<int64_t> ids;     // token ids; the image (if any) is one placeholder id
  std::vector<int64_t> labels;  // = ids where trained, -100 elsewhere
};
constexpr int64_t kIgnoreIndex = -100;

// Renders `turns` (user, assistant, ..., assistant) with the template, tokenizes with BOS, and
// masks everything but the answers. Throws stic::Error when the tokens cannot be aligned with
// the text (a tokenizer that normalises the text).
EncodedChat encode_chat(const Tokenizer& tok, TemplateKind kind, const std::vector<Turn>& turns,
                        const std::string& system = "");

// Where the image goes in its turn: "front" (LLaVA's preprocess_multimodal moves the marker to
// the start of the first turn that has it, "<image>\n" + the rest stripped; a conversation with
// no marker gets one before its first turn) or "keep" (where the text has it, as HF's processors
// do; none: before the first turn). Throws stic::Error on another value.
void place_image_marker(std::vector<Turn>& turns, const std::string& mode);

// encode_chat for `model`: the tokenizer's <image> id becomes the model's placeholder id.
EncodedChat encode_chat_for(const LoadedModel& model, TemplateKind kind, const std::vector<Turn>& turns);

// One sequence of a batch: its encoded chat and, for an image example, its decoded image.
struct CollateItem {
  int64_t index = 0;                 // the caller's example index (reported back in `used`)
  const EncodedChat* chat = nullptr;
  const ImageInput* image = nullptr;  // null = text only; items with the same pointer share one encoding
};

struct CollatedBatch {
  torch::Tensor embeds;       // (B, T, C), right-padded with zeros
  torch::Tensor labels;       // (B, T) int64, -100 on masked, image and padded positions
  std::vector<int64_t> used;  // item indices that made it into the batch, in order
  int64_t tokens = 0;         // real (unpadded) positions
  // items left out: over max_length before any answer token (index, what was too long)
  std::vector<std::pair<int64_t, std::string>> too_long;
  std::vector<std::pair<int64_t, int64_t>> truncated;  // items cut at the end: (index, positions cut)
};

class Collator {
 public:
  // max_length: decoder positions per sequence, image features included.
  Collator(LoadedModel& model, int64_t max_length);
  // Encodes the images (one vision-tower call for every single-crop image; gradients through
  // the tower and projector only when they train), splices them at the placeholder, truncates
  // over-long sequences at the end (answer tokens go first, never the image) and pads.
  CollatedBatch collate(const std::vector<CollateItem>& items);
  int64_t max_length() const { return max_length_; }

 private:
  LoadedModel& model_;
  int64_t max_length_;
};

// Per sequence, the sum of log p(label[t+1] | positions <= t) over labels != -100 (fp32, (B),
// differentiable) and the number of such labels ((B) int64): log π(y|x) of DPO.
// LogProbRule::BestOtherToken reproduces the released STIC trainer's rejected log-prob: at each
// label position, the log-prob of the most likely token other than the label (its top-1, or its
// top-2 where the top-1 is the label) — not log π(y_l|x) (reference/stic-method.md section 7).
struct SequenceLogProbs {
  torch::Tensor sum;    // (B) float32
  torch::Tensor count;  // (B) int64
};
enum class LogProbRule { Label, BestOtherToken };
SequenceLogProbs sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& labels,
                                   LogProbRule rule = LogProbRule::Label);

// Shifted causal-LM cross-entropy: logits (B, T, V), labels (B, T); mean over labels != -100
// (HF's loss), computed from sequence_logprobs.
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace stic
