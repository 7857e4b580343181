// stic/text/stic_prompts.h — the paper's prompt sets (reference/stic-method.md section 2),
// shared by the method (method/pref_data.h: the default prompt file) and the built-in world
// (world/text.h: its base data answers these prompts).
#pragma once

#include <string>
#include <vector>

namespace stic {

const std::string& stic_step_by_step_prompt();                 // the preferred prompt (2.1), seven lines
const std::vector<std::string>& stic_normal_prompts();         // the 8 normal description prompts (2.2)
const std::vector<std::string>& stic_hallucination_prompts();  // the 8 hallucination-inducing prompts (2.3)

// DaR's description prompt (section 5): "Detail the composition and subjects within the frame."
const std::string& stic_dar_prompt();

// A human turn with an image description infused (sections 4 and 5), the text stage 2 trains on
// and describe-and-respond asks:
//   a turn with "<image>"   -> "<image>\nImage description:\n{desc}\n\n{question}"
//                              (question = the turn without its marker, stripped: where LLaVA's
//                              preprocess puts the image anyway, so "q\n<image>" and "<image>\nq"
//                              read the same)
//   a turn without it       -> "Image description:\n{desc}\n\n{turn}"
std::string infuse_description(const std::string& turn, const std::string& description);

}  // namespace stic
