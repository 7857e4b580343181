// stic/eval/bench_eval.h — `stic eval` on the real benchmark files (POPE, ScienceQA, TextVQA,
// MMBench, LLaVA-Bench, MM-Vet; score/benchmark.h reads them and holds the scoring rules).
//
//   OUT/answers.jsonl        one line per question in LLaVA's answer-file layout
//                            {"question_id", "prompt", "text", "answer_id", "model_id", "metadata",
//                             "id"}, or {"id", "question_id", "error"} for a question whose image
//                            could not be read; appended and flushed, a re-run skips the ids there
//   OUT/dar_descriptions.jsonl   with --dar: one description per distinct image (eval/dar.h)
//   OUT/per_question.jsonl   question id, category, prompt, raw output, parsed answer, correct
//   OUT/summary.json, OUT/summary.md   the scores (and the errors, with their ids)
//   OUT/eval_config.json     what was run
//   OUT/images/              MMBench's base64 images, decoded once (the engine reads files)
// With `answers` set, no model runs: that file (LLaVA's answer layout, from any system) is
// scored by the same rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stic/score/benchmark.h"

namespace stic {

struct BenchEvalOptions {
  score::LoadOptions data;  // benchmark, data, annotations, image dir, limit, circular
  std::string model, adapter, out, answers;
  std::string device = "cpu", dtype = "auto", template_name = "auto", model_id;
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  int batch_size = 32;
  int max_new_tokens = 0;  // 0 = the benchmark's (short answers 128, open-ended 1024)
  bool progress = true;
  bool dar = false;
  std::string dar_prompt;  // "" = stic_dar_prompt()
  int dar_max_new_tokens = 1024;
  std::string dar_model, dar_adapter;  // "" = the evaluated model and adapter
  int shard_index = 0, shard_count = 1;
};

struct BenchEvalResult {
  score::Scored scores;
  int64_t questions = 0, generated = 0, resumed = 0, failed = 0;
  double gen_seconds = 0;
  int64_t dar_described = 0;
  double dar_seconds = 0;
};

// Throws stic::Error (located) on unreadable benchmark files or a bad model.
BenchEvalResult run_bench_eval(const BenchEvalOptions& o);

// `stic eval --compare`: the summaries of several OUT folders side by side, Markdown, with the
// difference of each run to the first per metric and per category.
std::string compare_runs(const std::vector<std::string>& dirs);

}  // namespace stic
