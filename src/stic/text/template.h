// stic/text/template.h — chat templates, rendered exactly as LLaVA's llava/conversation.py.
//
//   vicuna_v1  (LLaVA "v1"/"vicuna_v1", separator style TWO, sep " ", sep2 "</s>"):
//     "<system> USER: <q1> ASSISTANT: <a1></s>USER: <q2> ASSISTANT:"
//     system = "A chat between a curious user and an artificial intelligence assistant. The
//     assistant gives helpful, detailed, and polite answers to the user's questions."
//   llava_v1   the same layout with LLaVA's other system text ("... a curious human ... to the
//              human's questions.") — LLaVA defines it separately; it is NOT vicuna_v1.
//   mistral_instruct (style LLAMA_2, sep "", sep2 "</s>", no system):
//     "[INST] <q1> [/INST] <a1> </s>[INST] <q2> [/INST]"
//     (a system text, when given, goes first inside the first [INST] as
//      "<<SYS>>\n<system>\n<</SYS>>\n\n")
//   llava_llama_2 (style LLAMA_2, sep "<s>", sep2 "</s>", LLaVA's llama-2 system text):
//     "[INST] <<SYS>>\n<system>\n<</SYS>>\n\n<q1> [/INST] <a1> </s><s>[INST] <q2> [/INST]"
//     (LLaVA lstrips the characters of "<s>" off the front)
//   raw        turn contents verbatim (the system text, if any, first); an assistant answer is
//              followed by "</s>".
//
// An empty `system` argument means the template's default system text.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace stic {

enum class TemplateKind { Raw, VicunaV1, LlavaV1, MistralInstruct, LlavaLlama2 };

// "raw", "vicuna_v1" (alias "v1"), "llava_v1", "mistral_instruct", "llava_llama_2".
// Throws stic::Error listing the valid names.
TemplateKind template_from_name(const std::string& name);
std::string template_name(TemplateKind kind);
// The template LLaVA uses for a model type / checkpoint name: "mistral" -> mistral_instruct,
// "llama-2"/"llama_2" -> llava_llama_2, anything else (llava-1.5, vicuna, llama) -> vicuna_v1.
// Throws for ChatML models (e.g. llava-v1.6-34b), whose template is not supported.
TemplateKind template_for_model(const std::string& model_type_or_name);
std::string default_system(TemplateKind kind);

struct Turn {
  std::string role;  // "user" | "assistant"
  std::string content;
};

// Prompt for generation: all turns (user, assistant, ..., user) rendered, ending with the
// assistant prefix (" ASSISTANT:" / " [/INST]"). Throws stic::Error on a bad turn order.
std::string render_prompt(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system = "");

// Full training text (turns user, assistant, ..., assistant). answer_spans[i] is the [begin, end)
// byte range of the i-th assistant answer: it starts right after that turn's prompt — so
// text.substr(0, begin) == render_prompt(turns before this answer) — and therefore includes the
// separator before the answer (" "), and ends after the answer's end-of-turn "</s>". A token
// belongs to an answer when its first byte lies in the span (SentencePiece attaches the space
// to the answer's first token as "▁").
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> answer_spans;
};
RenderedChat render_chat(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system = "");

// LLaVA's convention for a user prompt and an image: with an image and no "<image>" in the
// text, returns "<image>\n" + user; with one marker, the text unchanged. Throws stic::Error when
// the markers do not match the image ("prompt has 2 <image> markers but 1 image was given", or
// a marker with no image).
std::string ensure_image_marker(const std::string& user, bool has_image);
// How many "<image>" markers the text holds.
size_t count_image_markers(const std::string& text);

}  // namespace stic
