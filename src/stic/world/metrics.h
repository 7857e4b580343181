// stic/world/metrics.h — ground-truth metrics of the built-in world (torch-free).
//
// Descriptions are parsed back into object mentions with the world's vocabulary (shape words,
// colour and size adjectives, number words, position phrases such as "in the top left") and
// compared with the scene graph:
//   * a mention is CORRECT when it is matched one-to-one to a scene object of the same shape and
//     the same colour (a mention without a colour matches any colour of that shape); unmatched
//     mentions are HALLUCINATED. precision = correct / mentions; recall = matched objects /
//     objects; CHAIR_i = hallucinated / mentions; CHAIR_s = descriptions with at least one
//     hallucinated mention / descriptions. "Shape hallucinations" are mentions whose shape is not
//     in the image at all.
//   * attribute accuracy: every mention is paired one-to-one with a scene object of its shape
//     (the pairing that best agrees on position, then colour, then size); for each attribute the
//     mention states (colour, size, position), accuracy = stated correctly / stated.
// Mentions inside a negation ("there is no green star") are ignored; a definite mention ("the
// red circle") of an object already mentioned is a co-reference, not a new mention; "two red
// circles" counts as two mentions.
// VQA answers are scored per task type (count, color, shape, size, position, existence,
// choice); POPE yes/no with POPE's rule (a "no"/"not" in the first sentence means no) into
// accuracy, precision, recall, F1 and yes-ratio, per negative-sampling strategy.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/world/scene.h"

namespace stic::world {

struct Mention {
  int shape = -1, color = -1, size = -1;  // -1: not stated
  int row = -1, col = -1;                  // -1: not stated
  std::string text;                        // the words it came from
};

// All object mentions of a free text, in order (plural counts expanded into copies).
std::vector<Mention> parse_description(const std::string& text);
// The position a phrase names ((row, col), -1 where unstated), e.g. "upper left" -> (0, 0).
std::pair<int, int> parse_position(const std::string& text);

struct AttrCount {
  int correct = 0, stated = 0;
  double accuracy() const { return stated ? static_cast<double>(correct) / stated : 0.0; }
};

struct DescriptionScore {
  int objects = 0, mentions = 0, correct = 0, matched_objects = 0, hallucinated = 0, shape_hallucinated = 0;
  std::map<std::string, AttrCount> attr;  // color, size, position
  std::vector<std::string> hallucinated_items, missed_items;  // "red circle" ...
  double precision() const { return mentions ? static_cast<double>(correct) / mentions : 0.0; }
  double recall() const { return objects ? static_cast<double>(matched_objects) / objects : 0.0; }
  double chair_i() const { return mentions ? static_cast<double>(hallucinated) / mentions : 0.0; }
};
DescriptionScore score_description(const Scene& scene, const std::string& text);

// Scores one short answer of a task type against the truth (for choice: the letter).
// `parsed` receives the normalised prediction.
bool score_answer(const std::string& type, const std::string& truth, const std::string& prediction,
                  std::string* parsed = nullptr, const std::vector<std::string>& options = {});
// POPE's yes/no reading of a free answer.
std::string pope_yes_no(const std::string& prediction);

struct PopeCount {
  int tp = 0, fp = 0, tn = 0, fn = 0;
  int n() const { return tp + fp + tn + fn; }
  double accuracy() const { return n() ? static_cast<double>(tp + tn) / n() : 0.0; }
  double precision() const { return tp + fp ? static_cast<double>(tp) / (tp + fp) : 0.0; }
  double recall() const { return tp + fn ? static_cast<double>(tp) / (tp + fn) : 0.0; }
  double f1() const { const double p = precision(), r = recall(); return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }
  double yes_ratio() const { return n() ? static_cast<double>(tp + fp) / n() : 0.0; }
};

struct WorldScores {
  // descriptions (micro-averaged over all mentions / objects)
  int descriptions = 0, desc_with_hallucination = 0;
  DescriptionScore desc;  // summed counts
  double chair_s() const { return descriptions ? static_cast<double>(desc_with_hallucination) / descriptions : 0.0; }
  // short answers: type -> (correct, total)
  std::map<std::string, AttrCount> vqa;
  std::map<std::string, AttrCount> choice_by_category;
  std::map<std::string, PopeCount> pope;  // random, popular, adversarial, all
  int predictions = 0, scored = 0, missing = 0, unknown_ids = 0;

  nlohmann::json to_json() const;
  std::string markdown() const;  // the summary table
};

struct ScoreOptions {
  std::string out_dir;  // "" = write nothing; else per_item.jsonl, summary.json, summary.md
};

// Scores predictions ({"id", "text"} per line, e.g. `stic generate`'s output for
// WORLD/eval/requests.jsonl) against WORLD/gt/eval_answers.jsonl and WORLD/gt/eval_scenes.jsonl.
// A malformed line is a stic::Error naming the file and line; ids the world does not know are
// counted (unknown_ids) and skipped; requests without a prediction are counted as missing.
WorldScores score_world(const std::string& world_dir, const std::string& predictions_jsonl,
                        const ScoreOptions& opts = {});

}  // namespace stic::world
