// stic train-vision — trains a model's vision tower alone on the built-in world's scene graphs,
// before the LLaVA stages (docs/world.md, "Session 5"). Real LLaVAs start from a CLIP tower that
// already sees; a tower trained from random init through the language model needs more images
// than a CPU budget gives, while a direct objective teaches it in a few thousand steps.
//
// Objective (the vision probe's, bench/world_vision_probe.py): the tower's LLaVA features (its
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
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "stic/infer/runner.h"
#include "stic/train/cell_loss.h"
#include "stic/train/trainer.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/world/scene.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct VisionArgs {
  std::string model, world, output_dir, device = "cpu", dtype = "auto", schedule = "cosine";
  TrainConfig train;
  double sincos_init = 1.0;
  int64_t eval_every = 0, eval_examples = 200;
  bool no_progress = false;
};

constexpr int kCells = 9;

// One pool's images (pixels as the model preprocesses them) and per-cell labels.
struct CellData {
  std::vector<torch::Tensor> pixels;  // (1, 3, H, W) each
  torch::Tensor shape, color;         // (N, 9) int64: 0 = empty, else 1 + vocabulary index
};

CellData load_cells(const Runner& runner, const std::string& world, const std::string& pool, int64_t limit) {
  const std::string path = world + "/gt/" + pool + "_scenes.jsonl";
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open (is ", world, " a world built by `stic world`?)");
  CellData d;
  std::vector<int64_t> s, c;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line) && (limit <= 0 || static_cast<int64_t>(d.pixels.size()) < limit)) {
    ++lineno;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      fail(path, ": line ", lineno, ": not valid JSON");
    }
    const std::string where = path + ": line " + std::to_string(lineno);
    const world::Scene sc = world::scene_from_json(j, where);
    const world::CellLabels cl = world::cell_labels(sc, where);
    const std::string img = world + "/images/" + sc.image;
    try {
      d.pixels.push_back(runner.load_image(img).pixels);
    } catch (const Error& e) {
      fail(where, ": image ", img, ": ", e.what());
    }
    s.insert(s.end(), cl.shape.begin(), cl.shape.end());
    c.insert(c.end(), cl.color.begin(), cl.color.end());
  }
  if (d.pixels.empty()) fail(path, ": no scenes");
  const int64_t n = static_cast<int64_t>(d.pixels.size());
  d.shape = torch::tensor(s, torch::kInt64).view({n, kCells});
  d.color = torch::tensor(c, torch::kInt64).view({n, kCells});
  return d;
}

// 9 learned queries (one per grid cell) attend over the tower's patch features; linear heads
// predict each cell's shape and colour (class 0 = empty).
struct CellHeadImpl : torch::nn::Module {
  CellHeadImpl(int64_t dim, int64_t heads, int64_t n_shapes, int64_t n_colors) {
    queries = register_parameter("queries", torch::randn({kCells, dim}) * 0.02);
    pool = register_module("pool", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(dim, heads)));
    shape = register_module("shape", torch::nn::Linear(dim, n_shapes + 1));
    color = register_module("color", torch::nn::Linear(dim, n_colors + 1));
  }
  // feats (N, P, C) -> (shape logits, colour logits), each (N, 9, classes)
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& feats) {
    const auto kv = feats.transpose(0, 1);                                   // (P, N, C): libtorch's MHA layout
    const auto q = queries.unsqueeze(1).expand({kCells, feats.size(0), feats.size(2)});
    auto h = std::get<0>(pool(q, kv, kv)).transpose(0, 1);                   // (N, 9, C)
    return {shape(h), color(h)};
  }
  torch::Tensor queries;
  torch::nn::MultiheadAttention pool{nullptr};
  torch::nn::Linear shape{nullptr}, color{nullptr};
};
TORCH_MODULE(CellHead);

// Correct shape / colour predictions at occupied cells, and the number of occupied cells.
// Logits (..., classes) and labels (...) of the same leading shape; class 0 (empty) is not a guess.
struct CellHits {
  double shape = 0, color = 0, occupied = 0;
};
CellHits count_hits(const torch::Tensor& ls, const torch::Tensor& lc, const torch::Tensor& s, const torch::Tensor& c) {
  torch::NoGradGuard ng;
  const auto occ = s > 0;
  const auto ps = ls.narrow(-1, 1, ls.size(-1) - 1).argmax(-1) + 1, pc = lc.narrow(-1, 1, lc.size(-1) - 1).argmax(-1) + 1;
  return {((ps == s) & occ).sum().item<double>(), ((pc == c) & occ).sum().item<double>(), occ.sum().item<double>()};
}

// The tower's LLaVA features of a batch of images, CLS dropped as the model's strategy says.
torch::Tensor tower_features(Llava& model, const torch::Tensor& pixels) {
  auto f = model->vision_tower->forward_features(pixels, model->cfg.feature_layers);
  if (model->cfg.select_strategy == "default") f = f.narrow(1, 1, f.size(1) - 1);
  return f;
}

// Rows 1.. of the position embedding (the patches; row 0 is CLS) = scale x a 2D sin-cos table:
// a quarter of the channels sin / cos of the row, a quarter sin / cos of the column, MAE-style.
void init_sincos_positions(Llava& model, double scale) {
  torch::NoGradGuard ng;
  auto& w = model->vision_tower->vision_model->embeddings->position_embedding->weight;
  const int64_t n = w.size(0) - 1, d = w.size(1), side = static_cast<int64_t>(std::llround(std::sqrt(n)));
  if (side * side != n || d % 4 != 0) fail("train-vision: --sincos-init needs a square patch grid and a width divisible by 4");
  const int64_t q = d / 4;
  auto t = torch::zeros({n, d});
  auto a = t.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t axis = 0; axis < 2; ++axis) {
      const double pos = static_cast<double>(axis == 0 ? i / side : i % side);
      for (int64_t k = 0; k < q; ++k) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / static_cast<double>(q));
        a[i][axis * 2 * q + k] = static_cast<float>(scale * std::sin(pos * omega));
        a[i][axis * 2 * q + q + k] = static_cast<float>(scale * std::cos(pos * omega));
      }
    }
  w.narrow(0, 1, n).copy_(t.to(w.device(), w.scalar_type()));
}

int run_train_vision(VisionArgs a) {
  const LoadOptions opts = load_options(a.device, a.dtype);
  Runner runner(a.model, opts);
  auto& model = runner.model();
  const auto device = model->multi_modal_projector->linear_1->weight.device();
  const auto dtype = model->multi_modal_projector->linear_1->weight.scalar_type();

  if (!a.no_progress) std::fprintf(stderr, "stic: train-vision: decoding the world's base and eval images\n");
  CellData train = load_cells(runner, a.world, "base", 0);
  CellData held = load_cells(runner, a.world, "eval", a.eval_examples);

  torch::manual_seed(a.train.seed);
  const auto& vc = model->cfg.vision;
  const int64_t feat_dim = vc.hidden_size * static_cast<int64_t>(model->cfg.feature_layers.size());
  CellHead head(feat_dim, vc.num_heads, static_cast<int64_t>(world::shape_names().size()),
                static_cast<int64_t>(world::object_colors().size()));
  head->to(device, dtype);
  if (a.sincos_init > 0 && !a.train.resume) init_sincos_positions(model, a.sincos_init);

  // trainable: the vision tower (its unused top layers get no gradient and stay as they are) + the head
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : model->vision_tower->named_parameters()) {
    p.value().set_requires_grad(true);
    params.push_back({"vision_tower." + p.key(), p.value()});
  }
  for (auto& p : head->named_parameters()) params.push_back({"cell_head." + p.key(), p.value()});
  model->train();
  head->train();

  std::error_code ec;
  std::filesystem::create_directories(a.output_dir, ec);
  if (ec) fail(a.output_dir, ": cannot create the output folder: ", ec.message());

  // logits of images `idx` of `d` (each (B, 9, classes)) and their labels (each (B, 9), on the device)
  struct CellBatch {
    torch::Tensor shape_logits, color_logits, shape, color;
  };
  auto forward = [&](const CellData& d, const std::vector<int64_t>& idx) {
    std::vector<torch::Tensor> px;
    for (int64_t i : idx) px.push_back(d.pixels[static_cast<size_t>(i)]);
    const auto ix = torch::tensor(idx, torch::kInt64);
    auto [ls, lc] = head(tower_features(model, torch::cat(px, 0).to(device, dtype)));
    return CellBatch{ls.to(torch::kFloat32), lc.to(torch::kFloat32), d.shape.index_select(0, ix).to(device),
                     d.color.index_select(0, ix).to(device)};
  };
  auto micro = [&](const std::vector<int64_t>& idx) {
    MicroBatchResult r;
    const CellBatch b = forward(train, idx);
    const auto ls = b.shape_logits.reshape({-1, b.shape_logits.size(-1)}), lc = b.color_logits.reshape({-1, b.color_logits.size(-1)});
    const auto sf = b.shape.reshape({-1}), cf = b.color.reshape({-1});
    r.loss = cell_loss(ls, lc, sf, cf);
    const CellHits h = count_hits(ls, lc, sf, cf);
    r.metrics["shape_acc"] = h.shape / std::max(1.0, h.occupied);
    r.metrics["color_acc"] = h.color / std::max(1.0, h.occupied);
    r.examples = static_cast<int64_t>(idx.size());
    r.tokens = r.examples;  // images: the trainer counts them under tc.unit = "images"
    return r;
  };
  // held-out accuracy at occupied cells of the eval pool's first images
  auto evaluate = [&]() {
    torch::NoGradGuard ng;
    model->eval();
    head->eval();
    const int64_t n = static_cast<int64_t>(held.pixels.size());
    CellHits total;
    for (int64_t i = 0; i < n; i += 64) {
      std::vector<int64_t> idx;
      for (int64_t k = i; k < std::min(n, i + 64); ++k) idx.push_back(k);
      const CellBatch b = forward(held, idx);
      const CellHits h = count_hits(b.shape_logits, b.color_logits, b.shape, b.color);
      total.shape += h.shape, total.color += h.color, total.occupied += h.occupied;
    }
    model->train();
    head->train();
    return std::make_pair(total.shape / std::max(1.0, total.occupied), total.color / std::max(1.0, total.occupied));
  };

  TrainConfig tc = a.train;
  tc.output_dir = a.output_dir;
  tc.unit = "images";  // metrics "images" / "images_per_s", progress "img/s"
  tc.schedule = a.schedule;
  tc.progress = !a.no_progress;
  auto save = [&](const std::string& dir) { save_full_checkpoint(model, dir); };
  std::vector<int64_t> lengths(train.pixels.size(), 1);
  Trainer trainer(tc, params, lengths, micro, save);
  const int64_t every = a.eval_every > 0 ? a.eval_every : std::max<int64_t>(1, trainer.total_steps() / 8);
  trainer.set_step_hook([&, every](int64_t step, std::map<std::string, double>& m) {
    if (step % every != 0 && step != trainer.total_steps()) return;
    const auto [sa, ca] = evaluate();
    m["eval_shape_acc"] = sa;
    m["eval_color_acc"] = ca;
    std::fprintf(stderr, "%seval step %lld: held-out shape accuracy %.1f%%, colour accuracy %.1f%% (%zu images)\n",
                 tc.progress ? "\r\033[K" : "", static_cast<long long>(step), 100 * sa, 100 * ca, held.pixels.size());
  });
  trainer.set_fingerprint({{"world", a.world}, {"model", a.model}, {"verb", "train-vision"}});
  {
    nlohmann::json cfg = {{"verb", "train-vision"}, {"model", a.model}, {"world", a.world}, {"device", a.device},
                          {"dtype", a.dtype}, {"lr", tc.lr}, {"schedule", tc.schedule},
                          {"warmup_ratio", tc.warmup_ratio}, {"batch_size", tc.batch_size}, {"max_steps", tc.max_steps},
                          {"total_steps", trainer.total_steps()}, {"weight_decay", tc.adam.weight_decay},
                          {"max_grad_norm", tc.max_grad_norm}, {"seed", tc.seed}, {"sincos_init", a.sincos_init},
                          {"images", train.pixels.size()}, {"eval_images", held.pixels.size()}};
    AtomicFile f(a.output_dir + "/train_config.json");
    f.write(cfg.dump(1) + "\n");
    f.commit();
  }
  const TrainResult r = trainer.run();
  if (!r.stopped_early) save(a.output_dir);
  std::fprintf(stderr, "stic: train-vision: %lld/%lld steps, last loss %.4f\n", static_cast<long long>(r.steps),
               static_cast<long long>(r.total_steps), r.last_loss);
  std::printf("%s\n", r.stopped_early ? r.last_checkpoint.c_str() : a.output_dir.c_str());
  return 0;
}

}  // namespace

void register_train_vision(CLI::App& app) {
  auto a = std::make_shared<VisionArgs>();
  a->train.lr = 2e-3;
  a->train.batch_size = 32;
  a->train.max_steps = 2000;
  a->train.seed = 0;
  auto* c = app.add_subcommand("train-vision",
                               "train a model's vision tower alone on the built-in world's scene graphs (before the LLaVA stages)");
  c->add_option("--model", a->model, "model folder (llava-hf layout), e.g. WORLD/model")->required();
  c->add_option("--world", a->world, "world folder built by `stic world` (labels: gt/base_scenes.jsonl)")->required();
  c->add_option("--output-dir", a->output_dir, "the model with the trained tower, checkpoints, metrics.jsonl")->required();
  c->add_option("--max-steps", a->train.max_steps, "optimizer steps")->capture_default_str();
  c->add_option("--batch-size", a->train.batch_size, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--lr", a->train.lr, "peak learning rate")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--schedule", a->schedule, "cosine|linear|constant")->capture_default_str()->check(CLI::IsMember({"cosine", "linear", "constant"}));
  c->add_option("--warmup-ratio", a->train.warmup_ratio, "warmup steps = ceil(ratio * total)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  c->add_option("--weight-decay", a->train.adam.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  c->add_option("--max-grad-norm", a->train.max_grad_norm, "clip the global grad norm (0: off)")->capture_default_str();
  c->add_option("--sincos-init", a->sincos_init, "start the patch position embeddings as this scale x a 2D sin-cos table (0: keep)")->capture_default_str();
  c->add_option("--eval-every", a->eval_every, "held-out accuracy every N steps (default: total/8) and at the end");
  c->add_option("--eval-examples", a->eval_examples, "eval-pool images for the held-out accuracy (0: all)")->capture_default_str();
  c->add_option("--save-every", a->train.save_every, "checkpoint every N steps (0: at the end)")->capture_default_str();
  c->add_option("--log-every", a->train.log_every, "metrics.jsonl / progress every N steps")->capture_default_str();
  c->add_flag("--resume", a->train.resume, "continue the run in --output-dir from its latest checkpoint");
  c->add_option("--stop-after", a->train.stop_after, "checkpoint and stop at this step (resume later)");
  c->add_option("--seed", a->train.seed, "data order and head init seed")->capture_default_str();
  c->add_option("--device", a->device, "cpu|cuda|cuda:N")->capture_default_str();
  c->add_option("--dtype", a->dtype, "auto|fp32|bf16")->capture_default_str();
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  verb_callbacks()[c] = [a] { return run_train_vision(*a); };
}

}  // namespace stic::app
