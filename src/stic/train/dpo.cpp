// stic/train/dpo.cpp — DpoTask: preference pairs -> batches -> log-probs -> STIC's loss. See dpo.h.
#include "stic/train/dpo.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "stic/io/pref_records.h"
#include "stic/model/linear.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/progress.h"
#include "stic/util/rng.h"
#include "stic/util/strings.h"

namespace stic {

namespace {
// A side's messages -> turns (user, assistant, ...). Returns "" or why the side is unusable.
std::string side_turns(const nlohmann::json& msgs, std::vector<Turn>* turns) {
  for (const auto& m : msgs) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_string())
      return "bad_turns: a message lacks a string \"content\"";
    const std::string role = m.value("role", m.value("from", std::string()));
    const std::string r = (role == "user" || role == "human") ? "user" : (role == "assistant" || role == "gpt") ? "assistant" : "";
    if (r.empty()) continue;  // system messages: not part of the rendered conversation
    turns->push_back(Turn{r, m["content"].get<std::string>()});
  }
  if (turns->empty() || turns->back().role != "assistant") return "bad_turns: the side does not end with an assistant answer";
  for (size_t t = 0; t < turns->size(); ++t)
    if ((*turns)[t].role != (t % 2 == 0 ? "user" : "assistant")) return "bad_turns: turns do not alternate user, assistant";
  for (size_t t = 1; t < turns->size(); t += 2)
    if (strip((*turns)[t].content).empty()) return "empty_side: an assistant answer is empty";
  return "";
}
}  // namespace

void DpoTask::skip(int64_t record, const std::string& id, const std::string& reason, const std::string& message) {
  log_.skip(record, id, reason, message);
}

std::string DpoTask::where(const DpoPair& p) const {
  return data_path_ + ": record " + std::to_string(p.record) + (p.id.empty() ? "" : " (id " + p.id + ")");
}

DpoTask::DpoTask(LoadedModel& model, const std::string& data_path, const DpoOptions& opts, const std::string& model_key)
    : model_(model), opts_(opts), collator_(model, opts.max_length), data_path_(data_path),
      log_(opts.errors_path, opts.max_messages) {
  check_dpo_options(opts.loss);
  const std::string tname = opts.template_name == "auto" ? model.config().default_template : opts.template_name;
  kind_ = template_from_name(tname.empty() ? "vicuna_v1" : tname);
  if (kind_ == TemplateKind::Raw) fail("train-dpo: --template raw has no answer markers; use a chat template");
  if (opts.image_marker != "front" && opts.image_marker != "keep")
    fail("train-dpo: image_marker must be front or keep (got '", opts.image_marker, "')");
  // settings that change a pair's reference log-probs: part of the cache key
  const std::string settings = str_cat(model_key, "|", tname, "|", opts.image_marker, "|", opts.add_image_marker, "|",
                                       opts.max_length, "|", opts.released_rejected_logps, "|", opts.image_dir, "|",
                                       static_cast<int>(model.config().aspect),
                                       // appended only for torchvision, so caches made before the flag stay valid
                                       model.config().image_backend == ImageBackend::Torchvision ? "|torchvision" : "");
  int64_t no_marker = 0, identical = 0;
  std::vector<PrefRecord> recs = read_pref_records(data_path, [&](size_t i, const std::string& w, const std::string& why) {
    skip(static_cast<int64_t>(i), "", "bad_record", w + ": " + why);
  });
  for (auto& r : recs) {
    DpoPair p;
    p.record = r.index;
    if (log_.reported(p.record)) continue;  // skipped by an interrupted earlier run: counted already
    p.id = pref_record_id(r.j);
    const std::string image = r.j.value("image", std::string());
    const std::string w = data_path + ": record " + std::to_string(p.record) + (p.id.empty() ? "" : " (id " + p.id + ")");
    std::vector<Turn> chosen, rejected;
    std::string why = side_turns(r.j["chosen"], &chosen);
    if (why.empty()) why = side_turns(r.j["rejected"], &rejected);
    if (!why.empty()) {
      const std::string reason = why.substr(0, why.find(':'));
      skip(p.record, p.id, reason, w + ": " + why.substr(why.find(':') + 2));
      continue;
    }
    if (chosen.back().content == rejected.back().content) {
      if (opts.skip_identical) {
        skip(p.record, p.id, "identical_sides", w + ": the chosen and rejected answers are the same text");
        continue;
      }
      ++identical;
    }
    size_t markers = 0;
    for (auto* side : {&chosen, &rejected}) {
      size_t m = 0;
      for (auto& t : *side) m += count_image_markers(t.content);
      markers = std::max(markers, m);
    }
    if (image.empty()) {
      if (markers > 0) {
        skip(p.record, p.id, "image_without_file", w + ": the prompt has <image> but the record has no \"image\" field");
        continue;
      }
    } else if (markers > 1) {
      skip(p.record, p.id, "multiple_images", w + ": " + std::to_string(markers) + " <image> markers; expected one");
      continue;
    } else if (markers == 0 && !opts.add_image_marker) {
      ++no_marker;  // the released data: trained without the image, as the released code does
    } else {
      p.image = opts.image_dir.empty() || image[0] == '/' ? image : opts.image_dir + "/" + image;
      if (const std::string why = regular_file_problem(p.image); !why.empty()) {
        skip(p.record, p.id, "image_missing", w + ": image file " + p.image + " " + why);
        continue;
      }
      place_image_marker(chosen, markers == 0 ? "front" : opts.image_marker);
      place_image_marker(rejected, markers == 0 ? "front" : opts.image_marker);
    }
    try {
      p.chosen = encode_chat_for(model, kind_, chosen);
      p.rejected = encode_chat_for(model, kind_, rejected);
    } catch (const Error& e) {
      skip(p.record, p.id, "bad_turns", w + ": " + e.what());
      continue;
    }
    char key[20];
    std::snprintf(key, sizeof key, "%016llx",
                  static_cast<unsigned long long>(hash_id(0x5d1cULL, r.j.dump() + "\n" + settings)));
    p.key = key;
    pairs_.push_back(std::move(p));
  }
  if (identical > 0) {
    log_.add("identical_kept", identical);
    std::fprintf(stderr, "stic: warning: %s: %lld pairs have the same chosen and rejected answer (kept; they add only the "
                 "regulariser; --skip-identical leaves them out)\n", data_path.c_str(), static_cast<long long>(identical));
  }
  if (no_marker > 0) {
    log_.add("no_image_marker", no_marker);
    std::fprintf(stderr, "stic: warning: %s: %lld pairs have an image but no <image> in the prompt; they train without the "
                 "image, as the released STIC code does (--add-image-marker shows it to the model)\n",
                 data_path.c_str(), static_cast<long long>(no_marker));
  }
}

std::vector<int64_t> DpoTask::lengths() const {
  const auto& cfg = model_.config();
  const int64_t img = model_.model()->num_image_tokens(cfg.crop_h, cfg.crop_w);
  std::vector<int64_t> out;
  for (auto& p : pairs_)
    out.push_back(static_cast<int64_t>(std::max(p.chosen.ids.size(), p.rejected.ids.size())) + (p.image.empty() ? 0 : img - 1));
  return out;
}

std::vector<CollateItem> DpoTask::items_of(const Batch& bt) const {
  std::vector<CollateItem> items;  // chosen rows, then rejected rows; item index 2 * pair + side
  for (int side = 0; side < 2; ++side)
    for (int64_t i : bt.pairs) {
      const DpoPair& p = pairs_[static_cast<size_t>(i)];
      items.push_back({2 * i + side, side == 0 ? &p.chosen : &p.rejected, p.image.empty() ? nullptr : &bt.images.at(i)});
    }
  return items;
}

DpoTask::Batch DpoTask::build_batch(const std::vector<int64_t>& idx, const std::map<int64_t, ImageInput>* images) {
  Batch bt;
  for (int64_t i : idx) {
    if (bad_pairs_.count(i)) continue;
    const DpoPair& p = pairs_.at(static_cast<size_t>(i));
    if (!p.image.empty()) {
      if (images && images->count(i)) {
        bt.images[i] = images->at(i);
      } else {
        try {
          bt.images[i] = model_.load_image(p.image);
        } catch (const Error& e) {
          bad_pairs_.insert(i);
          skip(p.record, p.id, "image_corrupt", where(p) + ": " + e.what());
          continue;
        }
      }
    }
    bt.pairs.push_back(i);
  }
  for (;;) {  // a side too long for max_length drops its pair; collate again without it
    if (bt.pairs.empty()) return bt;
    bt.b = collator_.collate(items_of(bt));
    if (bt.b.too_long.empty()) break;
    for (const auto& [item, why] : bt.b.too_long) {
      const int64_t i = item / 2;
      const DpoPair& p = pairs_[static_cast<size_t>(i)];
      bad_pairs_.insert(i);
      skip(p.record, p.id, "too_long", where(p) + " (" + (item % 2 ? "rejected" : "chosen") + "): " + why);
      bt.pairs.erase(std::remove(bt.pairs.begin(), bt.pairs.end(), i), bt.pairs.end());
    }
  }
  for (const auto& [item, cut] : bt.b.truncated)
    if (truncated_.insert(item).second) {
      log_.add("truncated_sides", 1);
      log_.add("truncated_tokens", cut);
    }
  return bt;
}

DpoTask::LogProbs DpoTask::logprobs(Batch& bt, bool reference) {
  auto& model = model_.model();
  const int64_t n = static_cast<int64_t>(bt.pairs.size());
  torch::Tensor embeds = bt.b.embeds;
  std::unique_ptr<AdapterDisabledGuard> off;
  std::unique_ptr<torch::NoGradGuard> ng;
  if (reference) {
    off = std::make_unique<AdapterDisabledGuard>();
    ng = std::make_unique<torch::NoGradGuard>();
    // image features that depend on trained weights are encoded again without the adapters
    if (embeds.requires_grad()) embeds = collator_.collate(items_of(bt)).embeds;
  }
  const int64_t t = embeds.size(1);
  auto pos = torch::arange(t, torch::TensorOptions().dtype(torch::kInt64).device(embeds.device())).unsqueeze(0).expand({2 * n, t});
  // no mask: causal attention, and right padding never reaches a real position
  auto logits = model->forward_embeds(embeds, pos, nullptr, false);
  const auto c = sequence_logprobs(logits.narrow(0, 0, n), bt.b.labels.narrow(0, 0, n));
  const auto r = sequence_logprobs(logits.narrow(0, n, n), bt.b.labels.narrow(0, n, n),
                                   opts_.released_rejected_logps ? LogProbRule::BestOtherToken : LogProbRule::Label);
  return {c.sum, r.sum, c.count};
}

DpoLossResult DpoTask::loss(Batch& bt) {
  const LogProbs pol = logprobs(bt, false);
  torch::Tensor rc, rr;
  if (!ref_cache_.empty()) {
    std::vector<double> c, r;
    for (int64_t i : bt.pairs) {
      const DpoPair& p = pairs_[static_cast<size_t>(i)];
      auto it = ref_cache_.find(p.key);
      if (it == ref_cache_.end()) fail(where(p), ": no precomputed reference log-probs (key ", p.key, ")");
      c.push_back(it->second.first);
      r.push_back(it->second.second);
    }
    rc = torch::tensor(c, torch::kFloat64).to(torch::kFloat32).to(pol.chosen.device());
    rr = torch::tensor(r, torch::kFloat64).to(torch::kFloat32).to(pol.chosen.device());
  } else {
    const LogProbs ref = logprobs(bt, true);
    rc = ref.chosen;
    rr = ref.rejected;
  }
  return dpo_loss(pol.chosen, pol.rejected, rc, rr, pol.chosen_tokens, opts_.loss);
}

MicroBatchResult DpoTask::micro(const std::vector<int64_t>& idx) {
  MicroBatchResult r;
  Batch bt = build_batch(idx);
  r.tokens = bt.b.tokens;
  r.examples = static_cast<int64_t>(bt.pairs.size());
  if (bt.pairs.empty()) return r;
  DpoLossResult d = loss(bt);
  r.loss = d.loss;
  d.metrics.erase("loss");  // the trainer logs the loss itself
  r.metrics = std::move(d.metrics);
  return r;
}

int64_t DpoTask::precompute_reference(const std::string& path, int batch_size, bool progress) {
  std::set<std::string> done;
  int64_t computed = 0;
  {
    JsonlWriter w(path, &done, "key");
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < static_cast<int64_t>(pairs_.size()); ++i)
      if (!done.count(pairs_[static_cast<size_t>(i)].key)) todo.push_back(i);
    Progress bar(static_cast<int64_t>(todo.size()), "reference log-probs", progress);
    const size_t bs = static_cast<size_t>(std::max(1, batch_size));
    for (size_t s = 0; s < todo.size(); s += bs) {
      std::vector<int64_t> part(todo.begin() + static_cast<std::ptrdiff_t>(s),
                                todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), s + bs)));
      Batch bt = build_batch(part);
      if (!bt.pairs.empty()) {
        const LogProbs ref = logprobs(bt, true);
        for (size_t k = 0; k < bt.pairs.size(); ++k) {
          const DpoPair& p = pairs_[static_cast<size_t>(bt.pairs[k])];
          w.write({{"key", p.key}, {"id", p.id}, {"chosen", ref.chosen[static_cast<int64_t>(k)].item<double>()},
                   {"rejected", ref.rejected[static_cast<int64_t>(k)].item<double>()}});
          ++computed;
        }
      }
      bar.update(static_cast<int64_t>(part.size()));
    }
  }
  read_jsonl(
      path,
      [&](size_t, const nlohmann::json& j) {
        ref_cache_[j.at("key").get<std::string>()] = {j.at("chosen").get<double>(), j.at("rejected").get<double>()};
      },
      [&](size_t, const std::string& msg) { fail(msg); });
  return computed;
}

std::string DpoTask::summary() const {
  static const std::set<std::string> kNotSkips = {"truncated_sides", "truncated_tokens", "identical_kept", "no_image_marker"};
  const std::string parts = log_.reasons(kNotSkips);
  std::string s = str_cat(pairs_.size() - bad_pairs_.size(), " usable pairs; skipped ", log_.skipped(kNotSkips),
                          parts.empty() ? "" : " (" + parts + ")", "; truncated ", log_.get("truncated_sides"),
                          " sides (", log_.get("truncated_tokens"), " tokens cut)");
  if (log_.get("identical_kept")) s += str_cat("; ", log_.get("identical_kept"), " identical pairs kept");
  if (log_.get("no_image_marker")) s += str_cat("; ", log_.get("no_image_marker"), " pairs without <image> trained text-only");
  return s;
}

}  // namespace stic
