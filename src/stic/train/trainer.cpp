// The trainer loop, AdamW, schedules and checkpoints. See trainer.h and optim.h.
#include "stic/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "stic/io/distributed.h"
#include "stic/io/safetensors.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"

namespace stic {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- AdamW

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions opts)
    : params_(std::move(params)), o_(opts) {
  torch::NoGradGuard ng;
  for (auto& [n, p] : params_) {
    master_.push_back(p.scalar_type() == torch::kFloat32 ? torch::Tensor() : p.detach().to(torch::kFloat32).clone());
    m_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32)));
    v_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32)));
    lr_scale_.push_back(1.0);
  }
}

void AdamW::zero_grad() {
  for (auto& [n, p] : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t_));
  const double bc2_sqrt = std::sqrt(bc2);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const double lr_i = lr * lr_scale_[i], step_size = lr_i / bc1;
    auto g = p.grad().to(torch::kFloat32);
    torch::Tensor w = master_[i].defined() ? master_[i] : p;
    if (o_.weight_decay != 0.0) w.mul_(1.0 - lr_i * o_.weight_decay);
    m_[i].mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    auto denom = (v_[i].sqrt() / bc2_sqrt).add_(o_.eps);
    w.addcdiv_(m_[i], denom, -step_size);
    if (master_[i].defined()) p.copy_(master_[i]);
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& n = params_[i].first;
    s["exp_avg/" + n] = m_[i].detach().to(torch::kCPU).contiguous();
    s["exp_avg_sq/" + n] = v_[i].detach().to(torch::kCPU).contiguous();
    if (master_[i].defined()) s["master/" + n] = master_[i].detach().to(torch::kCPU).contiguous();
  }
  s["optimizer_step"] = torch::tensor({t_}, torch::kInt64);
  return s;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& s, const std::string& where) {
  torch::NoGradGuard ng;
  auto get = [&](const std::string& k) -> const torch::Tensor& {
    auto it = s.find(k);
    if (it == s.end()) fail(where, ": optimizer state lacks '", k, "' (was the run started with other trainable parameters?)");
    return it->second;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& n = params_[i].first;
    auto& m = get("exp_avg/" + n);
    if (m.sizes() != m_[i].sizes()) fail(where, ": optimizer state for '", n, "' has shape ", m.sizes(), ", expected ", m_[i].sizes());
    m_[i].copy_(m);
    v_[i].copy_(get("exp_avg_sq/" + n));
    if (master_[i].defined()) master_[i].copy_(get("master/" + n));
  }
  t_ = get("optimizer_step").item<int64_t>();
}

double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm) {
  torch::NoGradGuard ng;
  torch::Tensor total;
  for (auto& [n, p] : params) {
    if (!p.grad().defined()) continue;
    auto sq = p.grad().to(torch::kFloat32).pow(2).sum().to(torch::kFloat64);
    total = total.defined() ? total + sq : sq;
  }
  if (!total.defined()) return 0.0;
  const double norm = std::sqrt(total.item<double>());
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
      for (auto& [n, p] : params)
        if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
}

Schedule schedule_from_name(const std::string& name) {
  if (name == "constant") return Schedule::Constant;
  if (name == "linear") return Schedule::Linear;
  if (name == "cosine") return Schedule::Cosine;
  fail("unknown lr schedule '", name, "'; expected constant, linear or cosine");
}

double lr_multiplier(Schedule s, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  switch (s) {
    case Schedule::Constant: return 1.0;
    case Schedule::Linear:
      return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
    case Schedule::Cosine: {
      const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
    }
  }
  return 1.0;
}

int64_t warmup_steps_from_ratio(double ratio, int64_t total) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(total) * ratio));
}

// ---------------------------------------------------------------- RNG

std::map<std::string, torch::Tensor> rng_state() {
  std::map<std::string, torch::Tensor> s;
  s["rng/cpu"] = at::detail::getDefaultCPUGenerator().get_state();
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d)
      s["rng/cuda" + std::to_string(d)] =
          at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d))).get_state();
  }
  return s;
}

void set_rng_state(const std::map<std::string, torch::Tensor>& s) {
  auto it = s.find("rng/cpu");
  if (it != s.end()) {
    auto g = at::detail::getDefaultCPUGenerator();
    g.set_state(it->second);
  }
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d) {
      auto c = s.find("rng/cuda" + std::to_string(d));
      if (c == s.end()) continue;
      auto g = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d)));
      g.set_state(c->second);
    }
  }
}

// ---------------------------------------------------------------- trainer

namespace {
std::string fmt_rate(double r) {  // 3 significant digits: "0.412", "12.5", "311"
  char buf[32];
  std::snprintf(buf, sizeof buf, r < 1 ? "%.3f" : r < 100 ? "%.1f" : "%.0f", r);
  return buf;
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

void fsync_dir(const std::string& dir) {
  // Best effort: make the rename durable.
  if (FILE* f = std::fopen(dir.c_str(), "r")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
}
}  // namespace

Trainer::Trainer(TrainConfig cfg, std::vector<std::pair<std::string, torch::Tensor>> params,
                 std::vector<int64_t> lengths, MicroFn micro, SaveFn save)
    : cfg_(std::move(cfg)),
      params_(std::move(params)),
      lengths_(std::move(lengths)),
      micro_(std::move(micro)),
      save_(std::move(save)),
      opt_(params_, cfg_.adam) {
  for (size_t i = 0; i < params_.size(); ++i)
    for (const auto& [prefix, lr] : cfg_.lr_by_prefix)
      if (params_[i].first.rfind(prefix, 0) == 0) {
        opt_.set_lr_scale(i, cfg_.lr > 0 ? lr / cfg_.lr : 0.0);
        break;
      }
  if (params_.empty()) fail("training: no trainable parameters");
  if (lengths_.empty()) fail("training: the data set is empty (no usable records)");
  if (cfg_.batch_size < 1 || cfg_.grad_accum < 1) fail("training: batch size and grad accumulation must be >= 1");
  const int64_t n = static_cast<int64_t>(lengths_.size());
  rank_ = Distributed::get().rank();
  world_ = Distributed::get().world();
  batches_per_epoch_ = (n + cfg_.batch_size - 1) / cfg_.batch_size;
  const int64_t steps_per_epoch = std::max<int64_t>(1, batches_per_epoch_ / accum_global());
  total_steps_ = cfg_.max_steps > 0 ? cfg_.max_steps
                                    : static_cast<int64_t>(std::ceil(cfg_.epochs * static_cast<double>(steps_per_epoch)));
  if (total_steps_ < 1) fail("training: the run has no steps (epochs ", cfg_.epochs, ", max_steps ", cfg_.max_steps, ")");
  warmup_ = cfg_.warmup_steps >= 0 ? cfg_.warmup_steps : warmup_steps_from_ratio(cfg_.warmup_ratio, total_steps_);
  schedule_from_name(cfg_.schedule);
}

// The data-order rule, saved with a checkpoint: a run resumed under another rule would see other batches.
static const char* data_order(const TrainConfig& c) {
  return c.group_by_length ? "group_by_length" : c.sort_within_step ? "sort_within_step" : "shuffled";
}

std::vector<int64_t> Trainer::epoch_order(int64_t epoch) const {
  const int64_t n = static_cast<int64_t>(lengths_.size());
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  // Fisher-Yates with a 64-bit Mersenne twister: the same order on every platform.
  std::mt19937_64 rng(cfg_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(idx[i], idx[j]);
  }
  auto longest_first = [&](int64_t b, int64_t e) {  // idx[b, e) by length, longest first, stable
    std::stable_sort(idx.begin() + b, idx.begin() + e, [&](int64_t x, int64_t y) { return lengths_[x] > lengths_[y]; });
  };
  if (cfg_.group_by_length) {
    const int64_t mega = 50LL * cfg_.batch_size;
    for (int64_t b = 0; b < n; b += mega) longest_first(b, std::min(n, b + mega));
  } else if (cfg_.sort_within_step) {
    // each step's examples by length, so that each micro-batch holds records of similar length.
    // Steps run on across epochs (micro-batch m is in step m / grad_accum): when an epoch does not
    // hold whole steps, its first micro-batches finish the step the previous epoch began, and
    // those are sorted as one run (the step's other part lies in the previous epoch).
    const int64_t accum = accum_global(), bs = cfg_.batch_size;
    const int64_t into = (epoch * batches_per_epoch_) % accum;  // micro-batches of the open step done
    int64_t b = 0;
    auto sort_run = [&](int64_t micro_batches) {
      const int64_t e = std::min(n, b + micro_batches * bs);
      longest_first(b, e);
      b = e;
    };
    if (into > 0) sort_run(accum - into);
    while (b < n) sort_run(accum);
  }
  return idx;
}

std::vector<int64_t> Trainer::micro_batch(int64_t micro) {
  const int64_t epoch = micro / batches_per_epoch_, pos = micro % batches_per_epoch_;
  if (epoch != cached_epoch_) {
    cached_order_ = epoch_order(epoch);
    cached_epoch_ = epoch;
  }
  const int64_t n = static_cast<int64_t>(cached_order_.size());
  const int64_t b = pos * cfg_.batch_size, e = std::min(n, b + cfg_.batch_size);
  return std::vector<int64_t>(cached_order_.begin() + b, cached_order_.begin() + e);
}

void Trainer::save_checkpoint(int64_t step, int64_t micro, double loss) {
  if (cfg_.output_dir.empty()) return;
  const std::string name = "checkpoint-" + std::to_string(step);
  if (rank_ != 0) {  // rank 0 writes; the others wait until the checkpoint is in place
    Distributed::get().barrier();
    last_checkpoint_ = cfg_.output_dir + "/" + name;
    return;
  }
  const std::string final_dir = cfg_.output_dir + "/" + name;
  const std::string tmp = final_dir + ".tmp";
  std::error_code ec;
  remove_tree(tmp);
  fs::create_directories(tmp, ec);
  if (ec) fail(tmp, ": cannot create checkpoint folder: ", ec.message());
  if (save_) save_(tmp);
  std::map<std::string, torch::Tensor> st = opt_.state();
  for (auto& [n, p] : params_) st["param/" + n] = p.detach().to(torch::kCPU).contiguous();
  for (auto& [k, v] : rng_state()) st[k] = v;
  save_safetensors(tmp + "/trainer_state.safetensors", st);
  nlohmann::json j = {{"step", step},           {"micro_batches", micro}, {"total_steps", total_steps_},
                      {"loss", loss},           {"counters", counters_},  {"fingerprint", fingerprint_},
                      {"batch_size", cfg_.batch_size}, {"grad_accum", accum_global()}, {"seed", cfg_.seed},
                      {"lr", cfg_.lr},          {"schedule", cfg_.schedule}, {"warmup_steps", warmup_},
                      {"examples", lengths_.size()},
                      {"data_order", data_order(cfg_)}};
  {
    AtomicFile f(tmp + "/trainer_state.json");
    f.write(j.dump(1) + "\n");
    f.commit();
  }
  remove_tree(final_dir);
  fs::rename(tmp, final_dir, ec);
  if (ec) fail(final_dir, ": cannot move the finished checkpoint into place: ", ec.message());
  fsync_dir(cfg_.output_dir);
  {
    AtomicFile f(cfg_.output_dir + "/latest");
    f.write(name + "\n");
    f.commit();
  }
  last_checkpoint_ = final_dir;
  // keep the newest `keep_checkpoints`
  std::vector<std::pair<int64_t, std::string>> all;
  for (auto& e : fs::directory_iterator(cfg_.output_dir, ec)) {
    const std::string fn = e.path().filename().string();
    if (e.is_directory() && fn.rfind("checkpoint-", 0) == 0 && fn.find(".tmp") == std::string::npos) {
      try {
        all.emplace_back(std::stoll(fn.substr(11)), e.path().string());
      } catch (...) {
      }
    }
  }
  std::sort(all.begin(), all.end());
  const int keep = std::max(1, cfg_.keep_checkpoints);
  for (size_t i = 0; i + keep < all.size(); ++i)
    if (all[i].first != step) remove_tree(all[i].second);
  Distributed::get().barrier();
}

void Trainer::load_checkpoint(int64_t* step, int64_t* micro) {
  const std::string latest = cfg_.output_dir + "/latest";
  if (!file_exists(latest)) fail(cfg_.output_dir, ": --resume: no checkpoint to resume from (", latest, " is missing)");
  std::string name = read_text_file(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  // stic writes "checkpoint-N": anything else (a path, "..") is not followed out of the folder
  const bool plain = starts_with(name, "checkpoint-") && name.size() > 11 &&
                     name.find_first_not_of("0123456789", 11) == std::string::npos;
  if (!plain) fail(latest, ": names '", name.substr(0, 80), "', not a checkpoint-N folder of this run");
  const std::string dir = cfg_.output_dir + "/" + name;
  if (!dir_exists(dir)) fail(latest, ": names ", name, ", which is not a folder in ", cfg_.output_dir);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(dir + "/trainer_state.json"));
  } catch (const nlohmann::json::exception& e) {
    fail(dir, "/trainer_state.json: not valid JSON: ", e.what());
  }
  auto check = [&](const char* key, const nlohmann::json& now) {
    if (j.contains(key) && j[key] != now)
      fail(dir, ": --resume: the checkpoint was made with ", key, " = ", j[key].dump(), ", this run has ", now.dump(),
           " (resume needs the same settings)");
  };
  check("batch_size", cfg_.batch_size);
  check("grad_accum", accum_global());  // micro-batches per step over all ranks: another world size resumes
                                        // when its grad_accum x world is the same
  check("seed", cfg_.seed);
  check("examples", lengths_.size());
  check("total_steps", total_steps_);
  check("fingerprint", fingerprint_);
  check("data_order", data_order(cfg_));
  SafetensorsFile f(dir + "/trainer_state.safetensors");
  std::map<std::string, torch::Tensor> st;
  for (auto& [k, e] : f.entries()) st[k] = f.get(k);
  torch::NoGradGuard ng;
  for (auto& [n, p] : params_) {
    auto it = st.find("param/" + n);
    if (it == st.end()) fail(dir, ": checkpoint lacks trainable parameter '", n, "'");
    if (it->second.sizes() != p.sizes()) fail(dir, ": parameter '", n, "' has shape ", it->second.sizes(), ", expected ", p.sizes());
    p.copy_(it->second);
  }
  opt_.load_state(st, dir);
  set_rng_state(st);
  *step = j.value("step", int64_t{0});
  if (j.contains("loss") && j["loss"].is_number()) resumed_loss_ = j["loss"].get<double>();
  *micro = j.value("micro_batches", int64_t{0});
  if (j.contains("counters")) counters_ = j["counters"].get<std::map<std::string, int64_t>>();
  last_checkpoint_ = dir;
  // metrics.jsonl: drop records of steps after the checkpoint (the interrupted run's tail)
  const std::string mpath = cfg_.output_dir + "/metrics.jsonl";
  if (rank_ == 0 && file_exists(mpath)) {
    std::istringstream in(read_text_file(mpath));
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        if (nlohmann::json::parse(line).value("step", int64_t{0}) > *step) continue;
      } catch (...) {
        continue;  // a torn last line
      }
      kept += line + "\n";
    }
    AtomicFile mf(mpath);
    mf.write(kept);
    mf.commit();
  }
}

// Data parallel: the ranks' gradients summed (each micro-batch's loss was divided by the global
// g*W, so the sum is the mean over the step's g*W micro-batches, as one process with g*W), and
// the step's statistics summed so that every rank logs and decides alike.
bool Trainer::sync_step(double* loss_sum, int* used, int64_t* tokens, int64_t* examples,
                        std::map<std::string, double>* msum, bool bad_loss) {
  torch::NoGradGuard ng;
  Distributed& d = Distributed::get();
  // the step's statistics, which parameters got a gradient anywhere, whether a loss was bad
  std::vector<double> flags;
  for (auto& [n, p] : params_) flags.push_back(p.grad().defined() ? 1.0 : 0.0);
  std::vector<torch::Tensor> st = {torch::tensor({*loss_sum, static_cast<double>(*used), static_cast<double>(*tokens),
                                                  static_cast<double>(*examples), *used > 0 ? 1.0 : 0.0,
                                                  bad_loss ? 1.0 : 0.0},
                                                 torch::kFloat64),
                                   torch::tensor(flags, torch::kFloat64)};
  d.allreduce_sum(st);
  const auto v = st[0].accessor<double, 1>();
  if (v[5] > 0) return true;  // every rank stops
  const auto has = st[1].accessor<double, 1>();
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has[static_cast<int64_t>(i)] == 0) continue;  // no rank's micro-batches reached it: left without a
                                                      // gradient, as one process would (AdamW skips it)
    torch::Tensor& p = params_[i].second;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  d.allreduce_sum(grads);
  *loss_sum = v[0];
  *used = static_cast<int>(std::llround(v[1]));
  *tokens = std::llround(v[2]);
  *examples = std::llround(v[3]);
  if (std::llround(v[4]) == world_) {  // every rank has the task's metrics: their sums (same keys)
    std::vector<double> vals;
    for (auto& [k, x] : *msum) vals.push_back(x);
    std::vector<torch::Tensor> mt = {torch::tensor(vals, torch::kFloat64)};
    d.allreduce_sum(mt);
    size_t i = 0;
    for (auto& [k, x] : *msum) x = mt[0][static_cast<int64_t>(i++)].item<double>();
  } else {
    msum->clear();  // some rank's micro-batches were all skipped: no per-step metrics this step
  }
  return false;
}

TrainResult Trainer::run() {
  const Schedule sched = schedule_from_name(cfg_.schedule);
  int64_t step = 0, micro = 0;
  if (!cfg_.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(cfg_.output_dir, ec);
    if (ec) fail(cfg_.output_dir, ": cannot create the output folder: ", ec.message());
  }
  // one run per output folder: a second process on it is refused, naming the first
  std::unique_ptr<FileLock> lock;  // (rank 0's: the ranks of one job share the folder)
  if (!cfg_.output_dir.empty() && rank_ == 0) lock = std::make_unique<FileLock>(cfg_.output_dir);
  const std::string mpath = cfg_.output_dir + "/metrics.jsonl";
  if (cfg_.resume && !cfg_.output_dir.empty() && !file_exists(cfg_.output_dir + "/latest") && file_exists(mpath)) {
    // killed before its first checkpoint: nothing to resume, so the run starts over (and its
    // metrics with it, never a second step 1 after the first)
    if (rank_ == 0) {
      std::fprintf(stderr, "stic: %s has no checkpoint yet (the earlier run stopped before its first); starting over\n",
                   cfg_.output_dir.c_str());
      write_file_atomic(mpath, "");
    }
  } else if (cfg_.resume) {
    load_checkpoint(&step, &micro);
    std::fprintf(stderr, "stic: resuming from %s (step %lld of %lld)\n", last_checkpoint_.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total_steps_));
  } else if (!cfg_.output_dir.empty() && file_exists(cfg_.output_dir + "/latest")) {
    fail(cfg_.output_dir, ": holds checkpoints of an earlier run; pass --resume to continue it or choose another "
         "--output-dir");
  } else if (!cfg_.output_dir.empty() && rank_ == 0 && file_exists(mpath) && fs::file_size(mpath) > 0) {
    fail(cfg_.output_dir, ": holds metrics.jsonl of an earlier run (stopped before its first checkpoint); pass "
         "--resume to start it over there or choose another --output-dir");
  }
  Distributed::get().barrier();  // every rank has read the folder as it was before rank 0 writes to it
  std::FILE* metrics = nullptr;
  if (!cfg_.output_dir.empty() && rank_ == 0) {
    metrics = std::fopen(mpath.c_str(), "a");
    if (!metrics) fail(cfg_.output_dir, "/metrics.jsonl: cannot open for appending");
  }
  const bool tty = isatty(fileno(stderr));
  TrainResult res;
  res.total_steps = total_steps_;
  res.last_loss = resumed_loss_;  // a resumed run that has nothing left to do reports its checkpoint's
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t step0 = step;
  int64_t steps_with_loss = 0;
  double tokens_window = 0, examples_window = 0, time_window_start = 0;
  int64_t& tokens_total = counters_["tokens_seen"];  // saved with checkpoints
  auto now_s = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  try {
    while (step < total_steps_) {
      opt_.zero_grad();
      double loss_sum = 0;
      int used = 0;
      int64_t tokens = 0, examples = 0;
      std::map<std::string, double> msum;
      const int64_t gw = accum_global();
      std::string bad_loss;
      for (int a = 0; a < cfg_.grad_accum; ++a) {
        const int64_t m = micro + static_cast<int64_t>(rank_) * cfg_.grad_accum + a;  // this rank's share
        MicroBatchResult r = micro_(micro_batch(m));
        tokens += r.tokens;
        examples += r.examples;
        if (!r.loss.defined()) continue;
        const double lv = r.loss.item<double>();
        if (!std::isfinite(lv)) {
          bad_loss = str_cat("non-finite loss (", lv, ") at step ", step + 1, " (micro-batch ", m, world_ > 1 ? str_cat(", rank ", rank_) : "", ")");
          break;  // (several ranks: reported to all at the step's sync, so that all stop together)
        }
        (r.loss / static_cast<double>(gw)).backward();
        loss_sum += lv;
        ++used;
        for (auto& [k, v] : r.metrics) msum[k] += v;
      }
      micro += gw;
      const bool any_bad = world_ > 1 ? sync_step(&loss_sum, &used, &tokens, &examples, &msum, !bad_loss.empty())
                                      : !bad_loss.empty();
      if (any_bad)
        fail(bad_loss.empty() ? str_cat("non-finite loss on another rank at step ", step + 1) : bad_loss,
             "; the run stopped before applying it", last_checkpoint_.empty() ? std::string(" (no checkpoint was written yet)")
                                                       : "; the last good checkpoint is " + last_checkpoint_);
      const double gnorm = clip_grad_norm(params_, cfg_.max_grad_norm);
      if (!std::isfinite(gnorm))
        fail("non-finite gradient norm (", gnorm, ") at step ", step + 1, "; the run stopped before applying it",
             last_checkpoint_.empty() ? std::string(" (no checkpoint was written yet)")
                                      : "; the last good checkpoint is " + last_checkpoint_);
      const double lr = cfg_.lr * lr_multiplier(sched, step, warmup_, total_steps_);
      if (used > 0) opt_.step(lr);
      ++step;
      if (used > 0) ++steps_with_loss;
      tokens_total += tokens;
      tokens_window += static_cast<double>(tokens);
      examples_window += static_cast<double>(examples);
      if (!cfg_.example_unit.empty()) counters_[cfg_.example_unit + "_seen"] += examples;
      const double loss = used > 0 ? loss_sum / used : std::nan("");
      if (used > 0) res.last_loss = loss;  // a step whose micro-batches were all skipped has no loss
      std::map<std::string, double> extra;  // the hook's metrics, logged as given (not averaged)
      if (hook_ && rank_ == 0) hook_(step, extra);
      if (metrics && (step % std::max<int64_t>(1, cfg_.log_every) == 0 || step == total_steps_ || !extra.empty())) {
        const double t = now_s();
        nlohmann::json j = {{"step", step}, {"loss", used > 0 ? nlohmann::json(loss) : nlohmann::json(nullptr)},
                            {"lr", lr}, {"grad_norm", gnorm}, {cfg_.unit, tokens_total},
                            {"epoch", static_cast<double>(micro) / static_cast<double>(batches_per_epoch_)}};
        if (!cfg_.example_unit.empty()) j[cfg_.example_unit] = counters_[cfg_.example_unit + "_seen"];
        for (auto& [k, v] : msum) j[k] = used > 0 ? v / used : v;
        for (auto& [k, v] : extra) j[k] = v;
        const double dt = t - time_window_start;
        if (dt > 0) {
          j[cfg_.unit + "_per_s"] = tokens_window / dt;
          if (!cfg_.example_unit.empty()) j[cfg_.example_unit + "_per_s"] = examples_window / dt;
          if (cfg_.peak_tflops > 0 && cfg_.flops_per_token > 0)
            j["mfu"] = tokens_window / dt * cfg_.flops_per_token / (cfg_.peak_tflops * 1e12);
        }
        std::fprintf(metrics, "%s\n", j.dump().c_str());
        std::fflush(metrics);
      }
      if (cfg_.progress && rank_ == 0 && (tty || step % std::max<int64_t>(1, cfg_.log_every) == 0 || step == total_steps_)) {
        const double t = now_s();
        const double rate = (step - step0) / std::max(1e-9, t);
        const double eta = (total_steps_ - step) / std::max(1e-9, rate);
        const double win = std::max(1e-9, t - time_window_start);
        const std::string ex_rate =
            cfg_.example_unit.empty() ? "" : fmt_rate(examples_window / win) + " " + cfg_.example_unit + "/s  ";
        std::fprintf(stderr, "%strain %lld/%lld  loss %.4f  lr %.3g  %.0f %s/s  %sETA %s%s", tty ? "\r\033[K" : "",
                     static_cast<long long>(step), static_cast<long long>(total_steps_), loss, lr, tokens_window / win,
                     cfg_.unit == "tokens" ? "tok" : cfg_.unit == "images" ? "img" : cfg_.unit.c_str(), ex_rate.c_str(),
                     fmt_duration(eta).c_str(), tty && step != total_steps_ ? "" : "\n");
        std::fflush(stderr);
      }
      if (step % std::max<int64_t>(1, cfg_.log_every) == 0) {
        tokens_window = 0;
        examples_window = 0;
        time_window_start = now_s();
      }
      // nothing usable in the first steps (every example's image corrupt, say): stop before a
      // checkpoint of untrained weights is written as if it were a result
      if (steps_with_loss == 0 && step - step0 == std::min<int64_t>(total_steps_ - step0, 8))
        fail("no micro-batch gave a loss in ", step - step0, " step(s): every example was skipped (see the skip "
             "summary above); nothing was trained and no result is written");
      const bool stop_now = cfg_.stop_after > 0 && step >= cfg_.stop_after && step < total_steps_;
      if (step == total_steps_ || stop_now || (cfg_.save_every > 0 && step % cfg_.save_every == 0))
        save_checkpoint(step, micro, loss);
      if (stop_now) {
        res.stopped_early = true;
        break;
      }
    }
  } catch (...) {
    if (metrics) std::fclose(metrics);
    opt_.zero_grad();
    throw;
  }
  if (metrics) std::fclose(metrics);
  res.steps = step;
  res.last_checkpoint = last_checkpoint_;
  return res;
}

}  // namespace stic
