// stic/train/vision.cpp — see vision.h.
#include "stic/train/vision.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "stic/io/distributed.h"
#include "stic/train/cell_loss.h"
#include "stic/train/setup.h"
#include "stic/util/error.h"
#include "stic/world/scene.h"

namespace stic {
namespace {

constexpr int kCells = 9;

// One pool's images (pixels as the model preprocesses them) and per-cell labels.
struct CellData {
  std::vector<torch::Tensor> pixels;  // (1, 3, H, W) each
  torch::Tensor shape, color;         // (N, 9) int64: 0 = empty, else 1 + vocabulary index
};

CellData load_cells(const LoadedModel& runner, const std::string& world, const std::string& pool, int64_t limit) {
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

}  // namespace

VisionRunResult run_train_vision(const VisionRunOptions& a) {
  LoadedModel runner(a.model, load_options(a.device, a.dtype, "", a.image_backend));
  auto& model = runner.model();
  const auto device = model->multi_modal_projector->linear_1->weight.device();
  const auto dtype = model->multi_modal_projector->linear_1->weight.scalar_type();

  if (a.train.progress) std::fprintf(stderr, "stic: train-vision: decoding the world's base and eval images\n");
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

  create_output_dir(a.output_dir);

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
  write_train_config(a.output_dir, {{"verb", "train-vision"}, {"model", a.model}, {"world", a.world}, {"device", a.device},
                          {"dtype", a.dtype}, {"lr", tc.lr}, {"schedule", tc.schedule},
                          {"warmup_ratio", tc.warmup_ratio}, {"batch_size", tc.batch_size}, {"max_steps", tc.max_steps},
                          {"total_steps", trainer.total_steps()}, {"weight_decay", tc.adam.weight_decay},
                          {"max_grad_norm", tc.max_grad_norm}, {"seed", tc.seed}, {"sincos_init", a.sincos_init},
                          {"images", train.pixels.size()}, {"eval_images", held.pixels.size()}});
  VisionRunResult res;
  res.train = trainer.run();
  if (!res.train.stopped_early && Distributed::get().rank() == 0) save(a.output_dir);  // one writer per job
  res.weights = res.train.stopped_early ? res.train.last_checkpoint : a.output_dir;
  return res;
}


}  // namespace stic
