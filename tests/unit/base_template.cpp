// Tests of the chat templates: exact strings derived by hand from LLaVA's llava/conversation.py
// (conv_vicuna_v1, conv_llava_v1, conv_mistral_instruct, conv_llava_llama_2 and their
// SeparatorStyle TWO / LLAMA_2 rendering) and reference/stic-method.md section 6.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stic/text/template.h"
#include "stic/util/error.h"

namespace {

using stic::TemplateKind;
using stic::Turn;

const std::string kVicunaSys =
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions.";
const std::string kLlavaSys =
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human's questions.";
const std::string kLlama2Sys =
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language.";

const std::vector<Turn> kOne = {{"user", "<image>\nWhat is this?"}};
const std::vector<Turn> kOneAnswered = {{"user", "<image>\nWhat is this?"}, {"assistant", "A red ball."}};
const std::vector<Turn> kTwo = {{"user", "<image>\nWhat is this?"}, {"assistant", "A red ball."},
                                {"user", "How many?"}};
const std::vector<Turn> kTwoAnswered = {{"user", "<image>\nWhat is this?"}, {"assistant", "A red ball."},
                                        {"user", "How many?"}, {"assistant", "Two."}};

// Each span starts where the prompt for that answer ends and covers answer + "</s>".
void check_spans(TemplateKind kind, const std::vector<Turn>& turns, const std::string& system = "") {
  const auto chat = stic::render_chat(kind, turns, system);
  ASSERT_EQ(chat.answer_spans.size(), turns.size() / 2);
  for (size_t a = 0; a < chat.answer_spans.size(); ++a) {
    const auto [b, e] = chat.answer_spans[a];
    const std::vector<Turn> before(turns.begin(), turns.begin() + 2 * a + 1);
    EXPECT_EQ(chat.text.substr(0, b), stic::render_prompt(kind, before, system));
    const std::string span = chat.text.substr(b, e - b);
    EXPECT_NE(span.find(turns[2 * a + 1].content), std::string::npos) << span;
    EXPECT_EQ(span.substr(span.size() - 4), "</s>") << span;
  }
}

TEST(Template, Names) {
  EXPECT_EQ(stic::template_from_name("raw"), TemplateKind::Raw);
  EXPECT_EQ(stic::template_from_name("vicuna_v1"), TemplateKind::VicunaV1);
  EXPECT_EQ(stic::template_from_name("v1"), TemplateKind::VicunaV1);
  EXPECT_EQ(stic::template_from_name("llava_v1"), TemplateKind::LlavaV1);
  EXPECT_EQ(stic::template_from_name("mistral_instruct"), TemplateKind::MistralInstruct);
  EXPECT_EQ(stic::template_from_name("llava_llama_2"), TemplateKind::LlavaLlama2);
  for (auto k : {TemplateKind::Raw, TemplateKind::VicunaV1, TemplateKind::LlavaV1, TemplateKind::MistralInstruct,
                 TemplateKind::LlavaLlama2})
    EXPECT_EQ(stic::template_from_name(stic::template_name(k)), k);
  try {
    stic::template_from_name("chatml");
    ADD_FAILURE();
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mistral_instruct"), std::string::npos) << e.what();
  }
}

TEST(Template, AutoFromModel) {
  EXPECT_EQ(stic::template_for_model("mistral"), TemplateKind::MistralInstruct);
  EXPECT_EQ(stic::template_for_model("liuhaotian/llava-v1.6-mistral-7b"), TemplateKind::MistralInstruct);
  EXPECT_EQ(stic::template_for_model("llava-hf/llava-1.5-7b-hf"), TemplateKind::VicunaV1);
  EXPECT_EQ(stic::template_for_model("llama"), TemplateKind::VicunaV1);
  EXPECT_EQ(stic::template_for_model("llava-llama-2-13b-chat"), TemplateKind::LlavaLlama2);
  EXPECT_THROW(stic::template_for_model("llava-v1.6-34b"), stic::Error);
}

TEST(Template, VicunaV1) {
  const auto k = TemplateKind::VicunaV1;
  EXPECT_EQ(stic::render_prompt(k, kOne), kVicunaSys + " USER: <image>\nWhat is this? ASSISTANT:");
  EXPECT_EQ(stic::render_prompt(k, kTwo),
            kVicunaSys + " USER: <image>\nWhat is this? ASSISTANT: A red ball.</s>USER: How many? ASSISTANT:");
  const auto chat = stic::render_chat(k, kTwoAnswered);
  EXPECT_EQ(chat.text, kVicunaSys +
                           " USER: <image>\nWhat is this? ASSISTANT: A red ball.</s>USER: How many? ASSISTANT: "
                           "Two.</s>");
  ASSERT_EQ(chat.answer_spans.size(), 2u);
  EXPECT_EQ(chat.text.substr(chat.answer_spans[0].first, chat.answer_spans[0].second - chat.answer_spans[0].first),
            " A red ball.</s>");
  EXPECT_EQ(chat.text.substr(chat.answer_spans[1].first), " Two.</s>");
  EXPECT_EQ(chat.answer_spans[1].second, chat.text.size());
  check_spans(k, kOneAnswered);
  check_spans(k, kTwoAnswered);
  // A custom system text replaces the default one.
  EXPECT_EQ(stic::render_prompt(k, {{"user", "Hi"}}, "Be brief."), "Be brief. USER: Hi ASSISTANT:");
}

TEST(Template, LlavaV1HasItsOwnSystemText) {
  const auto k = TemplateKind::LlavaV1;
  EXPECT_EQ(stic::render_prompt(k, kOne), kLlavaSys + " USER: <image>\nWhat is this? ASSISTANT:");
  EXPECT_EQ(stic::render_chat(k, kOneAnswered).text,
            kLlavaSys + " USER: <image>\nWhat is this? ASSISTANT: A red ball.</s>");
  check_spans(k, kTwoAnswered);
}

TEST(Template, MistralInstruct) {
  const auto k = TemplateKind::MistralInstruct;
  EXPECT_EQ(stic::render_prompt(k, kOne), "[INST] <image>\nWhat is this? [/INST]");
  EXPECT_EQ(stic::render_prompt(k, kTwo), "[INST] <image>\nWhat is this? [/INST] A red ball. </s>[INST] How many? [/INST]");
  const auto chat = stic::render_chat(k, kTwoAnswered);
  EXPECT_EQ(chat.text, "[INST] <image>\nWhat is this? [/INST] A red ball. </s>[INST] How many? [/INST] Two. </s>");
  ASSERT_EQ(chat.answer_spans.size(), 2u);
  EXPECT_EQ(chat.text.substr(chat.answer_spans[0].first, chat.answer_spans[0].second - chat.answer_spans[0].first),
            " A red ball. </s>");
  check_spans(k, kOneAnswered);
  check_spans(k, kTwoAnswered);
  EXPECT_EQ(stic::render_prompt(k, {{"user", "Hi"}}, "Be brief."), "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  check_spans(k, kTwoAnswered, "Be brief.");
}

TEST(Template, LlavaLlama2) {
  const auto k = TemplateKind::LlavaLlama2;
  const std::string first = "[INST] <<SYS>>\n" + kLlama2Sys + "\n<</SYS>>\n\n<image>\nWhat is this? [/INST]";
  EXPECT_EQ(stic::render_prompt(k, kOne), first);
  EXPECT_EQ(stic::render_prompt(k, kTwo), first + " A red ball. </s><s>[INST] How many? [/INST]");
  check_spans(k, kTwoAnswered);
}

TEST(Template, Raw) {
  const auto k = TemplateKind::Raw;
  EXPECT_EQ(stic::render_prompt(k, {{"user", "USER: <image>\nDescribe. ASSISTANT:"}}),
            "USER: <image>\nDescribe. ASSISTANT:");
  const auto chat = stic::render_chat(k, {{"user", "Q:"}, {"assistant", " A."}});
  EXPECT_EQ(chat.text, "Q: A.</s>");
  check_spans(k, {{"user", "Q:"}, {"assistant", " A."}});
}

TEST(Template, BadTurns) {
  const auto k = TemplateKind::VicunaV1;
  EXPECT_THROW(stic::render_prompt(k, {}), stic::Error);
  EXPECT_THROW(stic::render_prompt(k, {{"assistant", "x"}}), stic::Error);
  EXPECT_THROW(stic::render_prompt(k, kOneAnswered), stic::Error);   // ends with an answer
  EXPECT_THROW(stic::render_chat(k, kOne), stic::Error);             // no answer
  EXPECT_THROW(stic::render_chat(k, {{"user", "q"}, {"assistant", ""}}), stic::Error);
  EXPECT_THROW(stic::render_prompt(k, {{"user", "q"}, {"user", "q"}, {"user", "q"}}), stic::Error);
}

TEST(Template, ImageMarker) {
  EXPECT_EQ(stic::ensure_image_marker("What is this?", true), "<image>\nWhat is this?");
  EXPECT_EQ(stic::ensure_image_marker("What is <image> this?", true), "What is <image> this?");
  EXPECT_EQ(stic::ensure_image_marker("What is this?", false), "What is this?");
  try {
    stic::ensure_image_marker("<image>\n<image> two", true);
    ADD_FAILURE();
  } catch (const stic::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("prompt has 2 <image> markers but 1 image was given"), 0u) << e.what();
  }
  EXPECT_THROW(stic::ensure_image_marker("<image>\nhi", false), stic::Error);
}

}  // namespace
