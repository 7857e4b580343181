// STIC stage 2's description infusion (text/stic_prompts.h infuse_description, method/infuse.h
// run_infuse): hand-written records against the expected strings, byte for byte.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "stic/method/infuse.h"
#include "stic/text/stic_prompts.h"
#include "stic/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string tmp(const std::string& name) {
  const std::string d = (fs::temp_directory_path() / ("stic_infuse_" + std::to_string(::getpid()))).string();
  fs::create_directories(d);
  return d + "/" + name;
}
void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST(Infuse, TheTurnRule) {
  const std::string d = "A red cube left of a blue ball.";
  // marker first (the LLaVA layout), marker last, no marker, marker in the middle
  EXPECT_EQ(stic::infuse_description("<image>\nWhat colour is the cube?", d),
            "<image>\nImage description:\nA red cube left of a blue ball.\n\nWhat colour is the cube?");
  EXPECT_EQ(stic::infuse_description("What colour is the cube?\n<image>", d),
            "<image>\nImage description:\nA red cube left of a blue ball.\n\nWhat colour is the cube?");
  EXPECT_EQ(stic::infuse_description("What colour is the cube?", d),
            "Image description:\nA red cube left of a blue ball.\n\nWhat colour is the cube?");
  EXPECT_EQ(stic::infuse_description("Look: <image> what is it?", d),
            "<image>\nImage description:\nA red cube left of a blue ball.\n\nLook:  what is it?");
  // the description is used as given (no stripping, no escaping), non-ASCII bytes included
  EXPECT_EQ(stic::infuse_description("<image>\nQ?", "Un cube rouge — très grand.\n赤い立方体"),
            "<image>\nImage description:\nUn cube rouge — très grand.\n赤い立方体\n\nQ?");
  EXPECT_EQ(stic::stic_dar_prompt(), "Detail the composition and subjects within the frame.");
}

TEST(Infuse, RecordsByIdInEitherLayoutFieldsAndOrderKept) {
  // JSONL records: marker first, marker last, no marker, multi-turn, a record without a
  // description, one without conversations, one whose first turn is the model's, a line that is
  // not JSON; descriptions in another order, one non-ASCII, one for an unknown id, a repeated id,
  // one describe error, one of another image
  const std::string data = tmp("data.jsonl");
  write(data,
        "{\"id\":\"a\",\"image\":\"x/a.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ1?\"},{\"from\":\"gpt\",\"value\":\"A1\"}],\"z\":1}\n"
        "{\"z\":2,\"id\":\"b\",\"image\":\"b.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"Q2?\\n<image>\"},{\"from\":\"gpt\",\"value\":\"A2\"},{\"from\":\"human\",\"value\":\"<image> again?\"},{\"from\":\"gpt\",\"value\":\"A3\"}]}\n"
        "{\"id\":3,\"conversations\":[{\"from\":\"human\",\"value\":\"Text only?\"},{\"from\":\"gpt\",\"value\":\"Yes\"}]}\n"
        "{\"id\":\"nodesc\",\"image\":\"n.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n"
        "{\"id\":\"noconv\",\"image\":\"c.png\"}\n"
        "{\"id\":\"gptfirst\",\"image\":\"g.png\",\"conversations\":[{\"from\":\"gpt\",\"value\":\"hi\"},{\"from\":\"human\",\"value\":\"<image>\\nQ?\"}]}\n"
        "not json at all\n"
        "{\"id\":\"failed\",\"image\":\"f.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n"
        "{\"id\":\"other\",\"image\":\"o.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n");
  const std::string desc = tmp("desc.jsonl");
  write(desc,
        "{\"id\":\"3\",\"description\":\"plain\"}\n"
        "{\"id\":\"b\",\"image\":\"b.png\",\"description\":\"Une boîte — 箱\"}\n"
        "{\"id\":\"ghost\",\"image\":\"q.png\",\"description\":\"nobody\"}\n"
        "{\"id\":\"a\",\"image\":\"x/./a.png\",\"description\":\"first\"}\n"
        "{\"id\":\"a\",\"image\":\"x/a.png\",\"description\":\"second\"}\n"
        "{\"id\":\"failed\",\"image\":\"f.png\",\"error\":\"f.png: does not exist\"}\n"
        "{\"id\":\"other\",\"image\":\"elsewhere.png\",\"description\":\"wrong image\"}\n"
        "{\"image\":\"z.png\",\"description\":\"no id\"}\n");
  stic::InfuseOptions o{data, desc, tmp("out.jsonl"), ""};
  const stic::InfuseResult r = stic::run_infuse(o);
  EXPECT_EQ(r.records, 9);
  EXPECT_EQ(r.infused, 3);
  EXPECT_EQ(r.without_description, 2);  // nodesc, failed
  EXPECT_EQ(r.describe_failed, 1);
  EXPECT_EQ(r.bad_records, 3);          // noconv, gptfirst, the non-JSON line
  EXPECT_EQ(r.image_mismatch, 1);
  EXPECT_EQ(r.unused_descriptions, 1);  // ghost
  EXPECT_EQ(r.bad_description_lines, 2);  // the repeated "a", the line without an id
  EXPECT_EQ(stic::read_text_file(o.out),
            "{\"id\":\"a\",\"image\":\"x/a.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nImage description:\\nfirst\\n\\nQ1?\"},{\"from\":\"gpt\",\"value\":\"A1\"}],\"z\":1}\n"
            "{\"z\":2,\"id\":\"b\",\"image\":\"b.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nImage description:\\nUne boîte — 箱\\n\\nQ2?\"},{\"from\":\"gpt\",\"value\":\"A2\"},{\"from\":\"human\",\"value\":\"<image> again?\"},{\"from\":\"gpt\",\"value\":\"A3\"}]}\n"
            "{\"id\":3,\"conversations\":[{\"from\":\"human\",\"value\":\"Image description:\\nplain\\n\\nText only?\"},{\"from\":\"gpt\",\"value\":\"Yes\"}]}\n"
            "{\"id\":\"nodesc\",\"image\":\"n.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n"
            "{\"id\":\"noconv\",\"image\":\"c.png\"}\n"
            "{\"id\":\"gptfirst\",\"image\":\"g.png\",\"conversations\":[{\"from\":\"gpt\",\"value\":\"hi\"},{\"from\":\"human\",\"value\":\"<image>\\nQ?\"}]}\n"
            "not json at all\n"
            "{\"id\":\"failed\",\"image\":\"f.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n"
            "{\"id\":\"other\",\"image\":\"o.png\",\"conversations\":[{\"from\":\"human\",\"value\":\"<image>\\nQ?\"},{\"from\":\"gpt\",\"value\":\"A\"}]}\n");
  const json s = json::parse(stic::read_text_file(o.out + ".summary.json"));
  EXPECT_EQ(s["problems"]["unused_descriptions"]["first"], json::array({"ghost"}));
  EXPECT_EQ(s["problems"]["image_mismatch"]["first"][0]["id"], "other");
  EXPECT_EQ(s["problems"]["duplicate_description_ids"]["first"], json::array({"a"}));

  // the same records as a JSON list: a list comes back (indented as the input was)
  json list = json::array();
  for (const auto& line : {std::string(R"({"id":"a","image":"x/a.png","conversations":[{"from":"human","value":"<image>\nQ1?"},{"from":"gpt","value":"A1"}]})"),
                           std::string(R"({"id":"zz","conversations":[{"from":"user","value":"Hi"},{"from":"assistant","value":"Yo"}]})")})
    list.push_back(json::parse(line));
  write(tmp("data.json"), list.dump(1));
  stic::InfuseOptions lo{tmp("data.json"), desc, tmp("out.json"), ""};
  const stic::InfuseResult lr = stic::run_infuse(lo);
  EXPECT_EQ(lr.infused, 1);
  EXPECT_EQ(lr.without_description, 1);
  const json out = json::parse(stic::read_text_file(lo.out));
  ASSERT_TRUE(out.is_array());
  EXPECT_EQ(out[0]["conversations"][0]["value"], "<image>\nImage description:\nfirst\n\nQ1?");
  EXPECT_EQ(out[1], list[1]);
  EXPECT_NE(stic::read_text_file(lo.out).find("\n "), std::string::npos);
  fs::remove_all(fs::path(o.out).parent_path());
}
