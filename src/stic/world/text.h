// stic/world/text.h — text written from a scene graph: prompts, captions, detailed descriptions,
// responses to the method's description prompts (normal and hallucination-inducing), and
// question/answer tasks (counting, attributes, existence, position, multiple choice).
//
// Every sentence uses the world's fixed vocabulary ("a large red circle in the top left"), which
// is what the ground-truth metrics (metrics.h) parse back. Wording is varied with the caller's
// Rng, so the same Rng state gives the same text.
#pragma once

#include <string>
#include <vector>

#include "stic/world/scene.h"

namespace stic::world {

const std::vector<std::string>& normal_prompts();         // the method's 8 (section 2.2)
const std::vector<std::string>& hallucination_prompts();  // the method's 8 (section 2.3)
const std::string& step_by_step_prompt();                 // the preferred prompt (section 2.1)
const std::vector<std::string>& caption_prompts();        // brief-caption requests
extern const char* const kShortAnswerSuffix;  // "\nAnswer the question using a single word or phrase."
extern const char* const kOptionSuffix;       // "\nAnswer with the option's letter from the given choices directly."

std::string number_word(int n);  // 0..12 -> "zero".."twelve", else digits
std::string with_article(const std::string& phrase);  // "an orange circle"
// "a large red circle" (with_size) / "a red circle"; article=false: "large red circle"
std::string object_phrase(const WorldObject& o, bool with_size = true, bool article = true);
std::string background_phrase(const Scene& s);  // "a striped navy background"

std::string short_caption(const Scene& s, Rng& rng);
// One sentence naming every object with size, colour, shape and place, in reading order:
// "Three objects on a striped navy background: a large red circle in the top left, ...".
// The pretraining (feature-alignment) captions of the base model.
std::string grounded_caption(const Scene& s);
// Every object with size, colour, shape and place, the background, and who covers whom.
std::string detailed_description(const Scene& s, Rng& rng);
std::string normal_response(const Scene& s, int prompt_index, Rng& rng);  // answer to normal_prompts()[i]
std::string step_by_step_response(const Scene& s, Rng& rng);
// Real objects plus 1-2 invented ones (absent categories, stated as if present), as real LVLMs
// answer the hallucination-inducing prompts. `invented` receives the made-up objects.
std::string hallucinated_response(const Scene& s, int prompt_index, Rng& rng,
                                  std::vector<WorldObject>* invented = nullptr);

// One question about a scene. For multiple choice, `options` has 4 entries and `answer` is the
// letter; `category` names what it tests. For POPE-style existence, `pope` is
// random|popular|adversarial and `answer` is yes|no (lower case).
struct QA {
  std::string type;      // count | color | shape | size | position | existence | choice | pope
  std::string question;  // without any answer-format suffix
  std::string answer;
  std::vector<std::string> options;
  std::string category;
  std::string pope;
};

const std::vector<std::string>& qa_types();  // count color shape size position existence
QA make_qa(const Scene& s, const std::string& type, Rng& rng);
QA make_choice(const Scene& s, Rng& rng);
// question + "\nA. ...\nB. ..." (MMBench's layout, no hint)
std::string choice_text(const QA& q);
// POPE: n positives (present categories, fewer if the scene has fewer) and as many negatives
// chosen by `strategy`: random (uniform absent), popular (most frequent in the world's prior),
// adversarial (absent categories sharing a shape or colour with a present object).
std::vector<QA> pope_questions(const Scene& s, const std::string& strategy, int n, Rng& rng);
// Absent (shape, colour) categories ranked for a strategy, best first (exposed for tests).
std::vector<std::pair<int, int>> absent_categories(const Scene& s, const std::string& strategy, Rng& rng);

}  // namespace stic::world
