// stic/train/collator.cpp — see collator.h.
#include "stic/train/collator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "stic/util/error.h"
#include "stic/util/strings.h"

namespace stic {

namespace {
// The text a token stands for: "▁" -> " ", byte pieces "<0xNN>" -> that byte.
std::string token_text(const Tokenizer& tok, int32_t id) {
  std::string p = tok.id_to_piece(id);
  if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
    return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));
  }
  std::string out;
  static const std::string kSpace = "\xE2\x96\x81";
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 3, kSpace) == 0) {
      out += ' ';
      i += 3;
    } else {
      out += p[i++];
    }
  }
  return out;
}
}  // namespace

EncodedChat encode_chat(const Tokenizer& tok, TemplateKind kind, const std::vector<Turn>& turns,
                        const std::string& system) {
  RenderedChat rc = render_chat(kind, turns, system);
  const std::string& text = rc.text;
  auto ids32 = tok.encode(text, /*add_bos=*/true);
  EncodedChat out;
  out.ids.assign(ids32.begin(), ids32.end());
  out.labels.assign(ids32.size(), kIgnoreIndex);
  // Align every token with its first byte in `text`.
  size_t pos = 0;
  std::set<int32_t> added;
  for (auto& a : tok.added_tokens()) added.insert(a.id);
  for (size_t i = 0; i < ids32.size(); ++i) {
    const int32_t id = ids32[i];
    if (i == 0 && id == tok.bos_id() && text.compare(0, 3, "<s>") != 0) continue;  // the BOS we added
    const std::string t = token_text(tok, id);
    size_t start;
    if (text.compare(pos, t.size(), t) == 0) {
      start = pos;
      pos += t.size();
    } else if (!t.empty() && t[0] == ' ' && text.compare(pos, t.size() - 1, t, 1, std::string::npos) == 0) {
      start = pos;  // the tokenizer's dummy prefix "▁": not in the text
      pos += t.size() - 1;
    } else {
      size_t q = pos;  // an added token with lstrip eats whitespace before it
      while (q < text.size() && (text[q] == ' ' || text[q] == '\n')) ++q;
      if (added.count(id) && text.compare(q, t.size(), t) == 0) {
        start = q;
        pos = q + t.size();
      } else {
        fail("label mask: cannot align token ", i, " (id ", id, ", '", t, "') with the text at byte ", pos,
             "; the tokenizer changes the text (normalisation), which stic's span masking does not support");
      }
    }
    for (auto& [b, e] : rc.answer_spans)
      if (start >= b && start < e) out.labels[i] = id;
  }
  return out;
}

void place_image_marker(std::vector<Turn>& turns, const std::string& mode) {
  if (mode != "front" && mode != "keep") fail("image_marker must be front or keep (got '", mode, "')");
  bool placed = false;
  for (size_t t = 0; t < turns.size(); t += 2) {
    auto& c = turns[t].content;
    if (!count_image_markers(c)) continue;
    placed = true;
    if (mode == "front") {
      std::string rest = c;
      rest.erase(rest.find("<image>"), 7);
      c = "<image>\n" + strip(rest);
    }
  }
  if (!placed && !turns.empty()) turns[0].content = "<image>\n" + turns[0].content;
}

EncodedChat encode_chat_for(const LoadedModel& model, TemplateKind kind, const std::vector<Turn>& turns) {
  const Tokenizer& tok = model.tokenizer();
  EncodedChat c = encode_chat(tok, kind, turns);
  // the tokenizer's <image> id -> the model's placeholder (same for llava-hf checkpoints)
  const int32_t image_tok = tok.token_to_id("<image>");
  for (auto& x : c.ids)
    if (x == image_tok) x = model.placeholder_id();
  return c;
}

Collator::Collator(LoadedModel& model, int64_t max_length) : model_(model), max_length_(max_length) {}

CollatedBatch Collator::collate(const std::vector<CollateItem>& items) {
  auto& model = model_.model();
  const int64_t ph = model_.placeholder_id();
  bool vision_trains = false;
  for (auto& p : model->multi_modal_projector->parameters()) vision_trains |= p.requires_grad();
  for (auto& p : model->vision_tower->parameters()) vision_trains |= p.requires_grad();
  if (model->image_newline.defined()) vision_trains |= model->image_newline.requires_grad();
  CollatedBatch b;
  // the image features: one vision-tower call for all single-crop images; items that point at
  // the same ImageInput (a DPO pair's two sides) share one encoding
  std::map<const ImageInput*, torch::Tensor> features;
  {
    std::unique_ptr<torch::NoGradGuard> ng;
    if (!vision_trains) ng = std::make_unique<torch::NoGradGuard>();
    std::vector<const ImageInput*> images;  // distinct, in item order
    for (const auto& it : items)
      if (it.image && std::find(images.begin(), images.end(), it.image) == images.end()) images.push_back(it.image);
    std::vector<const ImageInput*> single;
    std::vector<torch::Tensor> crops;
    for (const ImageInput* im : images) {
      if (model_.config().aspect != AspectMode::Anyres && im->pixels.size(0) == 1) {
        single.push_back(im);
        crops.push_back(im->pixels);
      } else {
        features[im] = model->encode_image(*im);
      }
    }
    if (!crops.empty()) {
      auto f = model->encode_crops(torch::cat(crops, 0));  // (n, P, C)
      for (size_t k = 0; k < single.size(); ++k) features[single[k]] = f[static_cast<int64_t>(k)];
    }
  }
  std::vector<torch::Tensor> embeds, labels;
  for (const auto& it : items) {
    torch::Tensor feats;
    if (it.image) feats = features.at(it.image);
    std::vector<int64_t> ids = it.chat->ids, lab = it.chat->labels;
    const int64_t nimg = feats.defined() ? feats.size(0) : 0;
    const int64_t total = static_cast<int64_t>(ids.size()) + (nimg > 0 ? nimg - 1 : 0);
    if (total > max_length_) {
      const int64_t cut = total - max_length_;
      size_t img_pos = ids.size();
      for (size_t k = 0; k < ids.size(); ++k)
        if (ids[k] == ph) img_pos = k;
      const int64_t keep = static_cast<int64_t>(ids.size()) - cut;
      bool any_label = false;
      for (int64_t k = 0; k < keep && k >= 0; ++k) any_label |= lab[static_cast<size_t>(k)] != kIgnoreIndex;
      if (keep <= 0 || (img_pos < ids.size() && static_cast<int64_t>(img_pos) >= keep) || !any_label) {
        b.too_long.emplace_back(it.index, str_cat(total, " positions (image ", nimg, ") exceed --max-length ",
                                                  max_length_, " before any answer token"));
        continue;
      }
      ids.resize(static_cast<size_t>(keep));
      lab.resize(static_cast<size_t>(keep));
      b.truncated.emplace_back(it.index, cut);
    }
    auto e = model->embed_with_image(ids, feats, ph)[0];  // (T, C)
    std::vector<int64_t> full;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (ids[k] == ph && nimg > 0) full.insert(full.end(), static_cast<size_t>(nimg), kIgnoreIndex);
      else full.push_back(lab[k]);
    }
    embeds.push_back(e);
    labels.push_back(torch::tensor(full, torch::kInt64));
    b.used.push_back(it.index);
    b.tokens += e.size(0);
  }
  if (embeds.empty()) return b;
  int64_t tmax = 0;
  for (auto& e : embeds) tmax = std::max(tmax, e.size(0));
  const auto dev = embeds[0].device();
  for (size_t k = 0; k < embeds.size(); ++k) {
    const int64_t pad = tmax - embeds[k].size(0);
    if (pad > 0) {
      embeds[k] = torch::cat({embeds[k], torch::zeros({pad, embeds[k].size(1)}, embeds[k].options())}, 0);
      labels[k] = torch::cat({labels[k], torch::full({pad}, kIgnoreIndex, torch::kInt64)}, 0);
    }
  }
  b.embeds = torch::stack(embeds, 0);
  b.labels = torch::stack(labels, 0).to(dev);
  return b;
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  // HF's mean next-token cross-entropy = -(sum of the label log-probs) / (number of labels)
  const SequenceLogProbs lp = sequence_logprobs(logits, labels);
  return -lp.sum.sum() / lp.count.sum().clamp_min(1).to(torch::kFloat32);
}

SequenceLogProbs sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& labels, LogProbRule rule) {
  const int64_t t = logits.size(1);
  auto l = logits.narrow(1, 0, t - 1).to(torch::kFloat32);  // (B, T-1, V): predicts positions 1..T-1
  auto y = labels.narrow(1, 1, t - 1);                        // (B, T-1)
  auto mask = y != kIgnoreIndex;
  auto index = y.clamp_min(0);
  if (rule == LogProbRule::BestOtherToken) {
    // the most likely token other than the label: the top-1, or the top-2 where the top-1 is
    // the label (the released STIC trainer's rejected log-prob)
    auto top2 = std::get<1>(l.detach().topk(2, -1));  // (B, T-1, 2)
    auto first = top2.select(-1, 0), second = top2.select(-1, 1);
    index = torch::where(first == index, second, first);
  }
  auto tok = torch::log_softmax(l, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1);  // (B, T-1)
  SequenceLogProbs r;
  r.sum = (tok * mask.to(torch::kFloat32)).sum(1);
  r.count = mask.sum(1);
  return r;
}

}  // namespace stic
