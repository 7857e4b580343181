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

}  // namespace stic
