// SFT data, label masking, batching and loss. See sft.h.
#include "stic/train/sft.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "stic/image/image.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"

namespace stic {

std::vector<SftRecord> read_llava_records(const std::string& path,
                                          std::vector<std::tuple<int64_t, std::string, std::string>>* bad) {
  std::vector<nlohmann::json> items;
  std::vector<bool> parsed;  // false where a line was not JSON (reported); a JSON null is a bad record
  read_json_records(
      path, "a list of LLaVA records",
      [&](size_t, const std::string&, nlohmann::json& j) {
        items.push_back(std::move(j));
        parsed.push_back(true);
      },
      [&](size_t index, const std::string& where, const std::string& why) {
        if (bad) bad->emplace_back(static_cast<int64_t>(index), "", str_cat(where, ": not valid JSON: ", why));
        items.push_back(nlohmann::json());
        parsed.push_back(false);
      });
  std::vector<SftRecord> out;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& j = items[i];
    if (!parsed[i]) continue;  // reported above
    SftRecord r;
    r.record = static_cast<int64_t>(i);
    auto report = [&](const std::string& why) {
      if (bad) bad->emplace_back(r.record, r.id, why);
    };
    if (!j.is_object()) { report("bad_record: expected a JSON object"); continue; }
    if (j.contains("id")) r.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    if (j.contains("image") && j["image"].is_string()) r.image = j["image"].get<std::string>();
    if (!j.contains("conversations") || !j["conversations"].is_array()) {
      report("bad_record: no \"conversations\" list");
      continue;
    }
    bool ok = true;
    for (auto& c : j["conversations"]) {
      if (!c.is_object() || !c.contains("from") || !c.contains("value") || !c["value"].is_string()) {
        ok = false;
        break;
      }
      std::string from = c["from"].is_string() ? c["from"].get<std::string>() : "";
      std::string role = (from == "human" || from == "user") ? "user" : (from == "gpt" || from == "assistant") ? "assistant" : "";
      if (role.empty()) continue;  // e.g. system turns: not part of LLaVA's conversations
      r.turns.push_back(Turn{role, c["value"].get<std::string>()});
    }
    if (!ok) { report("bad_record: a conversation turn lacks \"from\"/\"value\""); continue; }
    // LLaVA: a conversation that starts with the assistant drops that turn.
    if (!r.turns.empty() && r.turns[0].role == "assistant") r.turns.erase(r.turns.begin());
    if (!r.turns.empty() && r.turns.back().role == "user") r.turns.pop_back();
    bool alternates = true;
    for (size_t t = 0; t < r.turns.size(); ++t)
      if (r.turns[t].role != (t % 2 == 0 ? "user" : "assistant")) alternates = false;
    if (!alternates) { report("bad_turns: turns do not alternate human, gpt, ..."); continue; }
    if (r.turns.empty()) { report("no_assistant_turn: the conversation has no gpt answer to train on"); continue; }
    bool empty_answer = false;
    for (size_t t = 1; t < r.turns.size(); t += 2)
      if (r.turns[t].content.empty()) empty_answer = true;
    if (empty_answer) { report("no_assistant_turn: a gpt answer is empty"); continue; }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
std::string reason_key(const std::string& why) { return why.substr(0, why.find(':')); }
}  // namespace

void SftTask::skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message) {
  log_.skip(record, id, reason, message);
}

SftTask::SftTask(LoadedModel& model, const std::string& data_path, const SftOptions& opts)
    : model_(model), opts_(opts), collator_(model, opts.max_length), data_path_(data_path),
      log_(opts.errors_path, opts.max_messages) {
  const std::string tname = opts.template_name == "auto" ? model.config().default_template : opts.template_name;
  kind_ = template_from_name(tname.empty() ? "vicuna_v1" : tname);
  if (opts.image_marker != "front" && opts.image_marker != "keep")
    fail("train-sft: image_marker must be front or keep (got '", opts.image_marker, "')");
  if (kind_ == TemplateKind::Raw) fail("train-sft: --template raw has no answer markers; use a chat template");
  std::vector<std::tuple<int64_t, std::string, std::string>> bad;
  auto records = read_llava_records(data_path, &bad);
  for (auto& [rec, id, why] : bad) skip(rec, id, reason_key(why),
         data_path + ": record " + std::to_string(rec) + (id.empty() ? "" : " (id " + id + ")") + ": " +
             why.substr(why.find(':') + 2));
  for (auto& r : records) {
    const std::string where = data_path + ": record " + std::to_string(r.record) + (r.id.empty() ? "" : " (id " + r.id + ")");
    size_t markers = 0;
    for (auto& t : r.turns) markers += count_image_markers(t.content);
    SftExample ex;
    ex.record = r.record;
    ex.id = r.id;
    if (r.image.empty()) {
      if (markers > 0) {
        skip(r.record, r.id, "image_without_file", where + ": the text has <image> but the record has no \"image\" field");
        continue;
      }
    } else {
      if (markers > 1) {
        skip(r.record, r.id, "multiple_images", where + ": " + std::to_string(markers) + " <image> markers; expected one");
        continue;
      }
      ex.image = opts.image_dir.empty() || r.image[0] == '/' ? r.image : opts.image_dir + "/" + r.image;
      if (const std::string why = regular_file_problem(ex.image); !why.empty()) {
        skip(r.record, r.id, "image_missing", where + ": image file " + ex.image + " " + why);
        continue;
      }
      place_image_marker(r.turns, opts.image_marker);
    }
    try {
      ex.chat = encode_chat_for(model, kind_, r.turns);
    } catch (const Error& e) {
      skip(r.record, r.id, "bad_turns", where + ": " + e.what());
      continue;
    }
    examples_.push_back(std::move(ex));
  }
}

std::vector<int64_t> SftTask::lengths() const {
  const auto& cfg = model_.config();
  const int64_t img = model_.model()->num_image_tokens(cfg.crop_h, cfg.crop_w);
  std::vector<int64_t> out;
  for (auto& e : examples_) out.push_back(static_cast<int64_t>(e.chat.ids.size()) + (e.image.empty() ? 0 : img - 1));
  return out;
}

bool SftTask::load_image_or_skip(int64_t i, ImageInput* out) {
  const SftExample& ex = examples_.at(static_cast<size_t>(i));
  try {
    *out = model_.load_image(ex.image);
    return true;
  } catch (const Error& e) {
    bad_examples_.insert(i);
    skip(ex.record, ex.id, "image_corrupt", where(ex) + ": " + e.what());
    return false;
  }
}

std::string SftTask::where(const SftExample& ex) const {
  return data_path_ + ": record " + std::to_string(ex.record) + (ex.id.empty() ? "" : " (id " + ex.id + ")");
}

SftBatch SftTask::build_batch(const std::vector<int64_t>& idx, const std::map<int64_t, ImageInput>* images) {
  // decode the images (a corrupt one skips its example), then collate
  std::map<int64_t, ImageInput> decoded;
  for (int64_t i : idx) {
    if (bad_examples_.count(i)) continue;
    const SftExample& ex = examples_.at(static_cast<size_t>(i));
    if (ex.image.empty()) continue;
    if (images && images->count(i)) {
      decoded[i] = images->at(i);
      continue;
    }
    ImageInput im;
    if (load_image_or_skip(i, &im)) decoded[i] = std::move(im);
  }
  std::vector<CollateItem> items;
  for (int64_t i : idx) {
    if (bad_examples_.count(i)) continue;
    const SftExample& ex = examples_.at(static_cast<size_t>(i));
    items.push_back({i, &ex.chat, ex.image.empty() ? nullptr : &decoded.at(i)});
  }
  SftBatch b = collator_.collate(items);
  for (const auto& [i, why] : b.too_long) {
    const SftExample& ex = examples_.at(static_cast<size_t>(i));
    bad_examples_.insert(i);
    skip(ex.record, ex.id, "too_long", where(ex) + ": " + why);
  }
  for (const auto& [i, cut] : b.truncated)
    if (truncated_.insert(i).second) {
      log_.add("truncated_records", 1);
      log_.add("truncated_tokens", cut);
    }
  return b;
}

torch::Tensor SftTask::loss(const SftBatch& b) {
  auto& model = model_.model();
  const int64_t bsz = b.embeds.size(0), t = b.embeds.size(1);
  auto pos = torch::arange(t, torch::TensorOptions().dtype(torch::kInt64).device(b.embeds.device()))
                 .unsqueeze(0)
                 .expand({bsz, t});
  // No mask: causal attention; right padding never reaches a real position.
  auto logits = model->forward_embeds(b.embeds, pos, nullptr, false);
  return causal_lm_loss(logits, b.labels);
}

MicroBatchResult SftTask::micro(const std::vector<int64_t>& idx) {
  MicroBatchResult r;
  SftBatch b = build_batch(idx);
  r.tokens = b.tokens;
  r.examples = static_cast<int64_t>(b.used.size());
  if (b.used.empty()) return r;
  // a batch whose labels were all cut has nothing to learn
  if ((b.labels != kIgnoreIndex).sum().item<int64_t>() == 0) return r;
  r.loss = loss(b);
  int64_t labels = (b.labels.narrow(1, 1, b.labels.size(1) - 1) != kIgnoreIndex).sum().item<int64_t>();
  r.metrics["label_tokens"] = static_cast<double>(labels);
  return r;
}

SftTask::EvalResult SftTask::evaluate(int64_t max_examples, int batch_size) {
  auto& model = model_.model();
  struct Restore {  // training mode comes back however evaluate() leaves
    Llava& m;
    bool was;
    ~Restore() { m->train(was); }
  } restore{model, model->is_training()};
  model->eval();
  torch::NoGradGuard ng;
  std::vector<int64_t> idx, with_image;
  for (int64_t i = 0; i < static_cast<int64_t>(examples_.size()); ++i) {
    if (max_examples > 0 && static_cast<int64_t>(idx.size()) >= max_examples) break;
    if (bad_examples_.count(i)) continue;
    const auto& ex = examples_[static_cast<size_t>(i)];
    if (!ex.image.empty() && !eval_images_.count(i)) {
      ImageInput im;
      if (!load_image_or_skip(i, &im)) continue;
      eval_images_[i] = std::move(im);
    }
    idx.push_back(i);
    if (!ex.image.empty()) with_image.push_back(i);
  }
  std::map<int64_t, ImageInput> other;  // example -> the image of the next example with one
  for (size_t k = 0; k < with_image.size(); ++k)
    other[with_image[k]] = eval_images_.at(with_image[(k + 1) % with_image.size()]);
  EvalResult r;
  double sum_true = 0, sum_other = 0;
  const size_t bs = static_cast<size_t>(std::max(1, batch_size));
  for (size_t s = 0; s < idx.size(); s += bs) {
    std::vector<int64_t> part(idx.begin() + static_cast<std::ptrdiff_t>(s),
                              idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), s + bs)));
    for (int pass = 0; pass < 2; ++pass) {
      SftBatch b = build_batch(part, pass == 0 ? &eval_images_ : &other);
      if (b.used.empty()) continue;
      auto y = b.labels.narrow(1, 1, b.labels.size(1) - 1);
      const int64_t n = (y != kIgnoreIndex).sum().item<int64_t>();
      if (n == 0) continue;
      const double l = loss(b).item<double>() * static_cast<double>(n);
      if (pass == 0) {
        sum_true += l;
        r.label_tokens += n;
        r.examples += static_cast<int64_t>(b.used.size());
      } else {
        sum_other += l;
      }
    }
  }
  if (r.label_tokens > 0) {
    r.loss = sum_true / static_cast<double>(r.label_tokens);
    r.loss_other_image = sum_other / static_cast<double>(r.label_tokens);
    r.image_gain = r.loss_other_image - r.loss;
  }
  return r;
}

std::string SftTask::summary() const {
  static const std::set<std::string> kNotSkips = {"truncated_records", "truncated_tokens"};
  const std::string parts = log_.reasons(kNotSkips);
  // an example whose image turned out corrupt when its batch was built was usable at load time:
  // it is counted once, as skipped, so that usable + skipped = the records read
  const int64_t usable = static_cast<int64_t>(examples_.size()) - log_.get("image_corrupt");
  return str_cat(usable, " usable records; skipped ", log_.skipped(kNotSkips),
                 parts.empty() ? "" : " (" + parts + ")", "; truncated ", log_.get("truncated_records"), " records (",
                 log_.get("truncated_tokens"), " tokens cut)");
}

}  // namespace stic
