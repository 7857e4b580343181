// stic/train/sft_run.cpp — run_sft (sft.h): stic train-sft as a library call.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "stic/io/distributed.h"
#include "stic/train/sft.h"
#include "stic/util/error.h"

namespace stic {

SftRunResult run_sft(const SftRunOptions& o) {
  LoadedModel lm(o.model, load_options(o.device, o.dtype, o.vision_tower, o.image_backend));
  if (!o.image_mode.empty()) lm.set_image_mode(parse_image_mode(o.image_mode));
  TrainSetupOptions setup_opts = o.setup;
  setup_opts.init_seed = o.train.seed;  // the same --seed, the same initial adapter
  const TrainSetup setup = setup_training(lm, setup_opts);
  create_output_dir(o.output_dir);
  SftOptions so;
  so.template_name = o.template_name;
  so.image_dir = o.image_dir;
  so.image_marker = o.image_marker;
  so.max_length = o.max_length;
  so.errors_path = o.output_dir + "/" + rank_file_name("errors.jsonl");
  std::error_code ec;
  if (!o.train.resume) std::filesystem::remove(so.errors_path, ec);
  SftTask task(lm, o.data, so);

  TrainConfig tc = o.train;
  tc.output_dir = o.output_dir;
  tc.lr_by_prefix = setup.lr_by_prefix;
  tc.flops_per_token = decoder_flops_per_token(lm.model());
  auto save = [&](const std::string& dir) { setup.save(lm, dir); };
  Trainer trainer(tc, setup.params, task.lengths(), [&](const std::vector<int64_t>& idx) { return task.micro(idx); },
                  save);
  std::unique_ptr<SftTask> eval_task;
  if (!o.eval_data.empty() && Distributed::get().rank() == 0) {  // (the hook runs on rank 0)
    SftOptions eo = so;
    eo.errors_path = o.output_dir + "/eval_errors.jsonl";
    std::filesystem::remove(eo.errors_path, ec);
    eval_task = std::make_unique<SftTask>(lm, o.eval_data, eo);
    const int64_t every = o.eval_every > 0 ? o.eval_every : std::max<int64_t>(1, trainer.total_steps() / 10);
    trainer.set_step_hook([&, every](int64_t step, std::map<std::string, double>& m) {
      if (step % every != 0 && step != trainer.total_steps()) return;
      const auto e = eval_task->evaluate(o.eval_examples, tc.batch_size);
      m["eval_loss"] = e.loss;
      m["eval_loss_other_image"] = e.loss_other_image;
      m["eval_image_gain"] = e.image_gain;
      m["eval_examples"] = static_cast<double>(e.examples);
      std::fprintf(stderr, "%seval step %lld: loss %.4f, with another image %.4f, image gain %.4f nats/token (%lld examples)\n",
                   tc.progress ? "\r\033[K" : "", static_cast<long long>(step), e.loss, e.loss_other_image,
                   e.image_gain, static_cast<long long>(e.examples));
    });
  }
  {
    std::map<std::string, std::string> fp = {{"data", o.data}, {"model", o.model}, {"full", o.setup.full ? "1" : "0"}};
    if (o.image_marker != "front") fp["image_marker"] = o.image_marker;  // absent = front: older checkpoints resume
    trainer.set_fingerprint(fp);
  }
  write_train_config(
      o.output_dir,
      {{"verb", "train-sft"}, {"model", o.model}, {"adapter", o.setup.adapter}, {"data", o.data},
       {"image_dir", o.image_dir}, {"image_marker", o.image_marker},
       {"image_mode", o.image_mode.empty() ? "model" : o.image_mode},
       {"image_backend", image_backend_name(lm.config().image_backend)}, {"template", o.template_name},
       {"device", o.device}, {"dtype", o.dtype}, {"lr", tc.lr}, {"mm_projector_lr", o.setup.mm_projector_lr},
       {"mm_vision_tower_lr", o.setup.mm_vision_tower_lr}, {"schedule", tc.schedule},
       {"warmup_ratio", tc.warmup_ratio}, {"batch_size", tc.batch_size}, {"grad_accum", tc.grad_accum},
       {"max_steps", tc.max_steps}, {"epochs", tc.epochs}, {"total_steps", trainer.total_steps()},
       {"weight_decay", tc.adam.weight_decay}, {"max_grad_norm", tc.max_grad_norm}, {"seed", tc.seed},
       {"max_length", o.max_length}, {"lora_r", setup.lora.r}, {"lora_alpha", setup.lora.alpha},
       {"lora_dropout", setup.lora.dropout}, {"full", o.setup.full}, {"trainable_parameters", setup.params.size()},
       {"gradient_checkpointing", o.setup.gradient_checkpointing}, {"group_by_length", tc.group_by_length},
       {"sort_within_step", tc.sort_within_step}, {"examples", task.examples().size()}});
  torch::manual_seed(tc.seed);
  SftRunResult res;
  try {
    res.train = trainer.run();
  } catch (const Error&) {
    if (!task.counts().empty()) std::fprintf(stderr, "stic: data: %s\n", task.summary().c_str());
    throw;
  }
  if (!res.train.stopped_early && Distributed::get().rank() == 0) save(o.output_dir);  // the final weights beside the checkpoints
  res.weights = res.train.stopped_early ? res.train.last_checkpoint : o.output_dir;
  res.data_summary = task.summary();
  return res;
}

}  // namespace stic
