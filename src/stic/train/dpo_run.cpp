// stic/train/dpo_run.cpp — run_dpo (dpo.h): stic train-dpo as a library call.
#include <cstdio>
#include <filesystem>

#include "stic/model/lora.h"
#include "stic/io/distributed.h"
#include "stic/train/dpo.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"
#include "stic/util/svg_plot.h"

namespace stic {

std::string dpo_curves_svg(const std::string& metrics_path) {
  PlotSeries loss{"loss", "#1f77b4", {}}, margins{"rewards/margins", "#d62728", {}}, acc{"rewards/accuracies", "#2ca02c", {}};
  if (file_exists(metrics_path))
    read_jsonl(
        metrics_path,
        [&](size_t, const nlohmann::json& j) {
          const double step = j.value("step", 0.0);
          for (auto* s : {&loss, &margins, &acc})
            if (j.contains(s->label) && j[s->label].is_number()) s->pts.emplace_back(step, j[s->label].get<double>());
        },
        [](size_t, const std::string&) {});
  std::vector<std::string> panels;
  for (auto* s : {&loss, &margins, &acc}) {
    PlotOptions o;
    o.y_label = s->label;
    o.height = 240;
    panels.push_back(line_plot_svg({*s}, o));
  }
  return stack_svg(panels, 640, 240);
}

DpoRunResult run_dpo(const DpoRunOptions& o) {
  check_dpo_options(o.dpo.loss);
  LoadedModel lm(o.model, load_options(o.device, o.dtype, o.vision_tower, o.image_backend));
  if (!o.image_mode.empty()) lm.set_image_mode(parse_image_mode(o.image_mode));
  TrainSetupOptions setup_opts = o.setup;
  setup_opts.init_seed = o.train.seed;  // the same --seed, the same initial adapter
  const TrainSetup setup = setup_training(lm, setup_opts);
  if (!o.precompute_ref) {
    if (setup.full)
      fail("train-dpo: --full has no adapter to disable for the reference; add --precompute-ref (the reference is then "
           "the model before training, computed once)");
    if (!setup.lora.modules_to_save.empty())
      fail("train-dpo: the adapter trains modules in full (modules_to_save: ", setup.lora.modules_to_save.front(),
           "); disabling the adapter would not restore them, so the reference would not be the base model. Use "
           "--precompute-ref or an adapter without modules_to_save");
  }
  create_output_dir(o.output_dir);
  DpoOptions dop = o.dpo;
  dop.image_dir = o.image_dir;
  dop.errors_path = o.output_dir + "/" + rank_file_name("errors.jsonl");
  std::error_code ec;
  if (!o.train.resume) std::filesystem::remove(dop.errors_path, ec);
  // the reference's identity: base weights (+ the starting adapter for --full) and how they run
  const std::string model_key = o.model + "|" + o.setup.adapter + "|" + o.dtype + "|" + o.device;
  DpoTask task(lm, o.data, dop, model_key);

  TrainConfig tc = o.train;
  tc.output_dir = o.output_dir;
  tc.lr_by_prefix = setup.lr_by_prefix;
  tc.example_unit = "pairs";
  // model FLOPs per position: 2N for the policy forward, 2N for the backward through the frozen
  // base, 2N for the reference forward when it runs (LoRA and recomputation not counted)
  const double two_n = decoder_flops_per_token(lm.model()) / 3.0;
  tc.flops_per_token = two_n * (o.precompute_ref ? 2.0 : 3.0);
  if (setup.full) tc.flops_per_token = two_n * 3.0;  // full: the backward also forms weight gradients
  if (o.precompute_ref && Distributed::get().active())
    fail("train-dpo: --precompute-ref runs in one process only (the reference file is written once, by one writer); "
         "run it without stic launch, or train with the adapter-disabled reference (leave --precompute-ref out)");
  if (o.precompute_ref) {
    const std::string path = o.output_dir + "/reference_logps.jsonl";
    torch::manual_seed(tc.seed);
    const int64_t n = task.precompute_reference(path, tc.batch_size, tc.progress);
    std::fprintf(stderr, "stic: train-dpo: reference log-probs of %lld pairs computed (%s)\n", static_cast<long long>(n),
                 path.c_str());
  }
  auto save = [&](const std::string& dir) {
    setup.save(lm, dir);
    write_file_atomic(o.output_dir + "/dpo.svg", dpo_curves_svg(o.output_dir + "/metrics.jsonl"));
  };
  Trainer trainer(tc, setup.params, task.lengths(), [&](const std::vector<int64_t>& idx) { return task.micro(idx); },
                  save);
  trainer.set_fingerprint({{"data", o.data}, {"model", o.model}, {"verb", "train-dpo"},
                           {"reference", o.precompute_ref ? "precomputed" : "adapter-disabled"}});
  const auto& L = o.dpo.loss;
  write_train_config(
      o.output_dir,
      {{"verb", "train-dpo"}, {"model", o.model}, {"adapter", o.setup.adapter}, {"data", o.data},
       {"image_dir", o.image_dir}, {"image_mode", o.image_mode.empty() ? "model" : o.image_mode},
       {"image_backend", image_backend_name(lm.config().image_backend)},
       {"template", o.dpo.template_name}, {"add_image_marker", o.dpo.add_image_marker}, {"device", o.device},
       {"dtype", o.dtype}, {"beta", L.beta}, {"alpha", L.alpha}, {"alpha_norm", L.alpha_norm}, {"loss_type", L.loss_type},
       {"label_smoothing", L.label_smoothing}, {"released_rejected_logps", o.dpo.released_rejected_logps},
       {"reference", o.precompute_ref ? "precomputed" : "adapter-disabled"}, {"lr", tc.lr}, {"schedule", tc.schedule},
       {"warmup_ratio", tc.warmup_ratio}, {"batch_size", tc.batch_size}, {"grad_accum", tc.grad_accum},
       {"max_steps", tc.max_steps}, {"epochs", tc.epochs}, {"total_steps", trainer.total_steps()},
       {"weight_decay", tc.adam.weight_decay}, {"max_grad_norm", tc.max_grad_norm}, {"seed", tc.seed},
       {"max_length", o.dpo.max_length}, {"lora_r", setup.lora.r}, {"lora_alpha", setup.lora.alpha},
       {"lora_dropout", setup.lora.dropout}, {"full", setup.full}, {"trainable_parameters", setup.params.size()},
       {"gradient_checkpointing", o.setup.gradient_checkpointing}, {"pairs", task.pairs().size()}});
  torch::manual_seed(tc.seed);
  DpoRunResult res;
  try {
    res.train = trainer.run();
  } catch (const Error&) {
    std::fprintf(stderr, "stic: data: %s\n", task.summary().c_str());
    throw;
  }
  if (!res.train.stopped_early && Distributed::get().rank() == 0) save(o.output_dir);
  res.weights = res.train.stopped_early ? res.train.last_checkpoint : o.output_dir;
  res.data_summary = task.summary();
  return res;
}

}  // namespace stic
