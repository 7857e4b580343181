// stic/text/stic_prompts.cpp — see stic_prompts.h.
#include "stic/text/stic_prompts.h"

#include "stic/util/strings.h"

namespace stic {

const std::vector<std::string>& stic_normal_prompts() {
  static const std::vector<std::string> v{
      "Illustrate the details of the picture.",
      "Summarize the visual content presented.",
      "Explain what is depicted in the photograph.",
      "Outline the key elements captured in the image.",
      "Detail the composition and subjects within the frame.",
      "Convey the atmosphere and mood represented in the snapshot.",
      "Interpret the scene shown in the image.",
      "Identify and describe the main focal points in the visual."};
  return v;
}

const std::vector<std::string>& stic_hallucination_prompts() {
  static const std::vector<std::string> v{
      "Describe the image with imaginative objects that may exist in the scene.",
      "Enrich the description by adding hypothetical objects or characters that could be part of the scene.",
      "Suggest and detail practical items or people that could logically inhabit the image's setting.",
      "Incorporate elements that, though absent, would seamlessly fit into the context of the picture.",
      "Imagine and describe additional everyday objects or activities taking place just out of frame.",
      "Augment the scene with details of potential events or items that are plausible.",
      "Conceive of and detail natural elements, such as weather or animals, that could realistically enter the "
      "scene. Make the description affirmative.",
      "Invent and incorporate details of practical tools, vehicles, or gadgets that could be expected in a similar "
      "scenario."};
  return v;
}

const std::string& stic_step_by_step_prompt() {
  static const std::string s =
      "Please provide a detailed description of the image, focusing on the following.\n"
      "Identify the main subjects (people, animals, objects) in the image and describe what they are doing.\n"
      "Describe the setting of the image. Is it indoors or outdoors? What kind of environment or location does it "
      "depict?\n"
      "What mood does the image convey? Are there any specific elements (such as lighting, weather, expressions) "
      "that contribute to this atmosphere?\n"
      "Describe the dominant colors and the overall composition. How do these elements affect the image's impact?\n"
      "Point out any details or symbols that might be relevant to understanding the image's meaning or context.\n"
      "If applicable, provide interpretations of what the image might represent or communicate.";
  return s;
}

const std::string& stic_dar_prompt() {
  static const std::string p = "Detail the composition and subjects within the frame.";
  return p;
}

std::string infuse_description(const std::string& turn, const std::string& description) {
  static const std::string marker = "<image>";
  const std::string block = "Image description:\n" + description + "\n\n";
  if (turn.find(marker) == std::string::npos) return block + turn;
  std::string question = turn;
  for (size_t p; (p = question.find(marker)) != std::string::npos;) question.erase(p, marker.size());
  return marker + "\n" + block + strip(question);
}

}  // namespace stic
