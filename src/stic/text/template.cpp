// stic/text/template.cpp — see template.h.
#include "stic/text/template.h"

#include <algorithm>
#include <cctype>

#include "stic/util/error.h"

namespace stic {

namespace {

const char kVicunaSystem[] =
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.";
const char kLlavaV1System[] =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";
const char kLlavaLlama2System[] =
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language.";
const char kEndOfTurn[] = "</s>";

const char kValidNames[] = "raw, vicuna_v1, llava_v1, mistral_instruct, llava_llama_2";

// Checks the turn order: user, assistant, user, ... ending with a user turn (prompt) or an
// assistant turn (chat).
void check_turns(const std::vector<Turn>& turns, bool end_with_user, const char* fn) {
  if (turns.empty()) fail(fn, ": no turns; expected user, assistant, ... turns");
  for (size_t i = 0; i < turns.size(); ++i) {
    const char* want = (i % 2 == 0) ? "user" : "assistant";
    if (turns[i].role != want)
      fail(fn, ": turn ", i, " has role '", turns[i].role, "'; expected '", want,
           "' (turns alternate user, assistant, ... starting with user)");
  }
  const bool last_user = turns.size() % 2 == 1;
  if (end_with_user && !last_user)
    fail(fn, ": the last turn is an assistant turn; expected the conversation to end with a user turn");
  if (!end_with_user && last_user)
    fail(fn, ": the last turn is a user turn; expected the conversation to end with an assistant answer");
}

// Renders `turns`; with open_end, appends the assistant prefix for generation. Records the
// span of each assistant answer.
RenderedChat render(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system_arg,
                    bool open_end) {
  const std::string system = system_arg.empty() ? default_system(kind) : system_arg;
  RenderedChat out;
  std::string& ret = out.text;
  switch (kind) {
    case TemplateKind::Raw: {
      ret = system;
      for (size_t i = 0; i < turns.size(); ++i) {
        if (i % 2 == 0) {
          ret += turns[i].content;
        } else {
          const size_t begin = ret.size();
          ret += turns[i].content + kEndOfTurn;
          out.answer_spans.emplace_back(begin, ret.size());
        }
      }
      break;
    }
    case TemplateKind::VicunaV1:
    case TemplateKind::LlavaV1: {  // SeparatorStyle.TWO, sep " ", sep2 "</s>"
      ret = system + " ";
      for (size_t i = 0; i < turns.size(); ++i) {
        const std::string& msg = turns[i].content;
        if (i % 2 == 0) {
          ret += msg.empty() ? std::string("USER:") : "USER: " + msg + " ";
        } else {
          ret += "ASSISTANT:";
          const size_t begin = ret.size();
          ret += " " + msg + kEndOfTurn;
          out.answer_spans.emplace_back(begin, ret.size());
        }
      }
      if (open_end) ret += "ASSISTANT:";
      break;
    }
    case TemplateKind::MistralInstruct:
    case TemplateKind::LlavaLlama2: {  // SeparatorStyle.LLAMA_2
      const std::string sep = kind == TemplateKind::LlavaLlama2 ? "<s>" : "";
      for (size_t i = 0; i < turns.size(); ++i) {
        std::string msg = turns[i].content;
        if (i % 2 == 0) {
          if (msg.empty()) {
            if (i == 0) fail("render: the first user turn is empty; expected a message");
            continue;  // LLaVA renders an empty message as nothing
          }
          if (i == 0 && !system.empty()) msg = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + msg;
          ret += sep + "[INST] " + msg + " [/INST]";
        } else {
          const size_t begin = ret.size();
          ret += " " + msg + " " + kEndOfTurn;
          out.answer_spans.emplace_back(begin, ret.size());
        }
      }
      // Python's str.lstrip(sep) strips any of sep's characters from the front.
      size_t cut = 0;
      while (cut < ret.size() && sep.find(ret[cut]) != std::string::npos) ++cut;
      if (cut > 0) {
        ret.erase(0, cut);
        for (auto& s : out.answer_spans) {
          s.first -= cut;
          s.second -= cut;
        }
      }
      break;
    }
  }
  return out;
}

}  // namespace

size_t count_image_markers(const std::string& s) {
  static const std::string kMarker = "<image>";
  size_t n = 0;
  for (size_t p = s.find(kMarker); p != std::string::npos; p = s.find(kMarker, p + kMarker.size())) ++n;
  return n;
}

TemplateKind template_from_name(const std::string& name) {
  if (name == "raw") return TemplateKind::Raw;
  if (name == "vicuna_v1" || name == "v1") return TemplateKind::VicunaV1;
  if (name == "llava_v1") return TemplateKind::LlavaV1;
  if (name == "mistral_instruct") return TemplateKind::MistralInstruct;
  if (name == "llava_llama_2") return TemplateKind::LlavaLlama2;
  fail("unknown chat template '", name, "'; expected one of: ", kValidNames);
}

std::string template_name(TemplateKind kind) {
  switch (kind) {
    case TemplateKind::Raw: return "raw";
    case TemplateKind::VicunaV1: return "vicuna_v1";
    case TemplateKind::LlavaV1: return "llava_v1";
    case TemplateKind::MistralInstruct: return "mistral_instruct";
    case TemplateKind::LlavaLlama2: return "llava_llama_2";
  }
  return "?";
}

std::string default_system(TemplateKind kind) {
  switch (kind) {
    case TemplateKind::VicunaV1: return kVicunaSystem;
    case TemplateKind::LlavaV1: return kLlavaV1System;
    case TemplateKind::LlavaLlama2: return kLlavaLlama2System;
    case TemplateKind::Raw:
    case TemplateKind::MistralInstruct: return "";
  }
  return "";
}

TemplateKind template_for_model(const std::string& model) {
  std::string s = model;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.find("mistral") != std::string::npos) return TemplateKind::MistralInstruct;
  if (s.find("llama-2") != std::string::npos || s.find("llama_2") != std::string::npos)
    return TemplateKind::LlavaLlama2;
  if (s.find("34b") != std::string::npos || s.find("chatml") != std::string::npos ||
      s.find("hermes") != std::string::npos)
    fail("model '", model, "' uses LLaVA's chatml_direct template, which stic does not support; pass --template (",
         kValidNames, ")");
  return TemplateKind::VicunaV1;
}

std::string render_prompt(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system) {
  check_turns(turns, /*end_with_user=*/true, "render_prompt");
  return render(kind, turns, system, /*open_end=*/true).text;
}

RenderedChat render_chat(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system) {
  check_turns(turns, /*end_with_user=*/false, "render_chat");
  for (size_t i = 1; i < turns.size(); i += 2)
    if (turns[i].content.empty())
      fail("render_chat: assistant turn ", i, " is empty; expected an answer to train on");
  return render(kind, turns, system, /*open_end=*/false);
}

std::string ensure_image_marker(const std::string& user, bool has_image) {
  const size_t n = count_image_markers(user);
  if (has_image) {
    if (n == 0) return "<image>\n" + user;
    if (n == 1) return user;
    fail("prompt has ", n, " <image> markers but 1 image was given; expected at most one");
  }
  if (n > 0)
    fail("prompt has ", n, " <image> marker", n > 1 ? "s" : "", " but no image was given; expected none");
  return user;
}

}  // namespace stic
