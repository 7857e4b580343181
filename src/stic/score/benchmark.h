// stic/score/benchmark.h — the real benchmark files and their official scoring rules, without a
// model: readers turn each benchmark's file layout into questions (the prompt as LLaVA-1.5/1.6's
// eval scripts build it), scorers turn answers into the numbers the benchmark's own scorer
// reports. Each rule cites the scorer it re-implements (score/benchmark.cpp).
//
//   pope       LLaVA's question JSONL (question_id, image, text, category) + --annotations: the
//              folder of coco_pope_{random,popular,adversarial}.json (or one such file);
//              accuracy, precision, recall, F1, yes-ratio per category (eval_pope.py)
//   scienceqa  LLaVA's question file (llava_test_CQM-A.json: id, image?, conversations) +
//              --annotations: the folder with problems.json and pid_splits.json; accuracy
//              overall and on image questions (eval_science_qa.py)
//   textvqa    LLaVA's question JSONL (question_id, image, text) + --annotations:
//              TextVQA_0.5.1_val.json; VQA accuracy (eval_textvqa.py + m4c_evaluator.py)
//   mmbench    the TSV (index, question, hint, A-D, answer, category, l2-category, image as
//              base64); accuracy overall and per category, circular (VLMEvalKit's rules)
//   llava-bench, mm-vet   LLaVA's question JSONL; answers written in the layouts their GPT
//              judges read, not scored here
//   world-mc, world-pope  the built-in world's eval/mmbench.tsv and eval/pope*.jsonl (answers in the
//              files themselves)
// Problems (a missing image, undecodable base64, an unknown answer letter, a question id
// absent from the annotations, an empty output) are counted as errors with their ids, never
// silently as wrong answers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stic::score {

struct LoadOptions {
  std::string benchmark;    // pope | scienceqa | textvqa | mmbench | llava-bench | mm-vet
  std::string data;         // the question file (MMBench: the TSV)
  std::string annotations;  // the scorer's file or folder (pope, scienceqa, textvqa)
  std::string image_dir;    // images named by the question file are relative to it
  std::string image_cache;  // MMBench: folder the base64 images are written to (once)
  std::string split = "test";  // ScienceQA's pid_splits.json key
  bool circular = true;     // MMBench: every rotation of the options (VLMEvalKit's CircularEval)
  int64_t limit = 0;        // the first N questions only (MMBench: N source questions)
  bool images = true;       // check that images exist, decode MMBench's (off to score answers)
};

struct Item {
  std::string id;               // unique key of the question (MMBench circular: "index@r")
  nlohmann::json question_id;   // as the question file has it (written back in answers)
  std::string image;            // the image file to read ("" = none)
  std::string image_name;       // the image as the file names it (DaR caches descriptions by it)
  std::string question;         // the user turn without <image>, the answer instruction included
  std::string instruction;      // that instruction ("" none), kept separately for DaR
  std::string category, l2_category;
  nlohmann::json gold;          // what the scorer needs
  std::string answer_key;       // how an answer file from elsewhere names it (LLaVA's layout):
                                // question_id; TextVQA: question_id + "\n" + the question;
                                // MMBench: index + "@" + round_id
  std::string error;            // a reading problem: not asked, counted as an error
};

struct Benchmark {
  std::string name;
  std::vector<Item> items;
  bool open_ended = false;      // answers are judged outside (GPT judge)
  int max_new_tokens = 128;     // LLaVA's eval default for this benchmark
  std::vector<std::string> warnings;  // reading problems that are not about one question
};

// Reads a benchmark; throws stic::Error naming the file (and record) for anything that makes
// the whole file unusable. Per-question problems become Item::error.
Benchmark load_benchmark(const LoadOptions& o);

// One answer as an answer file holds it.
struct Answer {
  std::string text, prompt;
};
// answers: Item::id -> the answer. Questions without an answer are errors.
struct Scored {
  std::vector<nlohmann::json> per_item;  // {"id","question_id","category","prompt","output","parsed","correct"}
  nlohmann::json summary;                // benchmark, metrics, per category, errors (count + ids)
  std::string markdown;                  // the summary as a table
};
Scored score_benchmark(const Benchmark& b, const std::map<std::string, Answer>& answers);

// ---- the rules, one function each (tests call them directly) ----

// POPE (LLaVA eval_pope.py): "yes" or "no".
std::string pope_parse(const std::string& output);

// ScienceQA (LLaVA eval_science_qa.py): the option index the output names, or -1 (FAILED).
int scienceqa_parse(const std::string& output, int n_options);

// TextVQA (m4c_evaluator.py EvalAIAnswerProcessor): the normalised answer.
std::string vqa_normalize(const std::string& answer);
// LLaVA eval_textvqa.py prompt_processor: the question inside a TextVQA prompt (lower-cased), ""
// when the prompt has none of the shapes it accepts.
std::string textvqa_prompt_question(const std::string& prompt);
// VQA accuracy of one (normalised) prediction against the (normalised) ground-truth answers:
// mean over each answer left out of min(1, matches among the others / 3).
double vqa_accuracy(const std::string& pred, const std::vector<std::string>& gt_answers);

// MMBench (VLMEvalKit can_infer): the option letter the output names, "" when none can be
// inferred (or several). `options`: letter -> option text, empty options left out.
std::string mmbench_extract(const std::string& output, const std::map<std::string, std::string>& options);

// base64 (RFC 4648, whitespace ignored); throws stic::Error on an invalid character or length.
std::string base64_decode(const std::string& text);

}  // namespace stic::score
