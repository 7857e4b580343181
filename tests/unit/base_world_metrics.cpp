// Unit tests of stic/world/metrics: hand-written descriptions with hand-computed precision,
// recall, CHAIR and attribute accuracies; short-answer parsing; score_world on a smoke world.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/world/metrics.h"
#include "stic/world/text.h"
#include "stic/world/world.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace stic::world;

WorldObject obj(int shape, int color, int size, int row, int col) {
  WorldObject o;
  o.shape = shape, o.color = color, o.size = size, o.row = row, o.col = col;
  return o;
}
// large red circle top left, small blue square center, medium red star bottom right
Scene hand_scene() {
  Scene s;
  s.objects = {obj(0, 0, 2, 0, 0), obj(1, 4, 0, 1, 1), obj(3, 0, 1, 2, 2)};
  return s;
}

TEST(WorldMetrics, ParsePositions) {
  EXPECT_EQ(parse_position("top left"), std::make_pair(0, 0));
  EXPECT_EQ(parse_position("in the upper-right corner"), std::make_pair(0, 2));
  EXPECT_EQ(parse_position("center"), std::make_pair(1, 1));
  EXPECT_EQ(parse_position("middle left"), std::make_pair(1, 0));
  EXPECT_EQ(parse_position("bottom center"), std::make_pair(2, 1));
  EXPECT_EQ(parse_position("at the bottom"), std::make_pair(2, -1));
}

TEST(WorldMetrics, ParseMentions) {
  auto m = parse_description("In the top left, there is a large red circle. Two blue squares sit in the center and "
                             "there is no green star. The red circle is big.");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].shape, 0);
  EXPECT_EQ(m[0].color, 0);
  EXPECT_EQ(m[0].size, 2);
  EXPECT_EQ(m[0].row, 0);
  EXPECT_EQ(m[0].col, 0);
  EXPECT_EQ(m[1].shape, 1);
  EXPECT_EQ(m[1].row, 1);
  EXPECT_EQ(m[2].color, 4);
  // "In the top left there is X and in the center Y": each gets its own place
  auto n = parse_description("In the top left there is a red circle and in the center a blue square.");
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].row * 3 + n[0].col, 0);
  EXPECT_EQ(n[1].row * 3 + n[1].col, 4);
  EXPECT_TRUE(parse_description("The image shows three objects on a plain black background.").empty());
}

TEST(WorldMetrics, PerfectDescription) {
  auto d = score_description(hand_scene(),
                             "The image shows three objects on a plain black background. In the top left there is a "
                             "large red circle. There is a small blue square in the center. A medium red star sits in "
                             "the bottom right.");
  EXPECT_EQ(d.mentions, 3);
  EXPECT_EQ(d.correct, 3);
  EXPECT_DOUBLE_EQ(d.precision(), 1.0);
  EXPECT_DOUBLE_EQ(d.recall(), 1.0);
  EXPECT_DOUBLE_EQ(d.chair_i(), 0.0);
  for (const char* a : {"color", "size", "position"}) {
    EXPECT_EQ(d.attr[a].stated, 3) << a;
    EXPECT_EQ(d.attr[a].correct, 3) << a;
  }
}

// The pretraining caption names every object with its attributes and place, exactly as the
// metrics read them back: a perfect score, and the literal sentence for the hand scene.
TEST(WorldMetrics, GroundedCaptionScoresPerfect) {
  const Scene s = hand_scene();  // background indices 0, 0: plain black
  const std::string c = grounded_caption(s);
  EXPECT_EQ(c, "Three objects on a plain black background: a large red circle in the top left, a small blue square "
               "in the center and a medium red star in the bottom right.");
  auto d = score_description(s, c);
  EXPECT_EQ(d.mentions, 3);
  EXPECT_EQ(d.correct, 3);
  for (const char* a : {"color", "size", "position"}) EXPECT_EQ(d.attr[a].correct, 3) << a;
}

TEST(WorldMetrics, HallucinationAndWrongPlace) {
  // red circle at the wrong place; an invented green triangle; a co-reference
  auto d = score_description(hand_scene(),
                             "There is a red circle in the top right and a green triangle in the center. The red "
                             "circle is large.");
  EXPECT_EQ(d.mentions, 2);
  EXPECT_EQ(d.correct, 1);
  EXPECT_EQ(d.hallucinated, 1);
  EXPECT_EQ(d.shape_hallucinated, 1);
  EXPECT_DOUBLE_EQ(d.precision(), 0.5);
  EXPECT_DOUBLE_EQ(d.recall(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(d.chair_i(), 0.5);
  EXPECT_EQ(d.attr["color"].stated, 1);
  EXPECT_EQ(d.attr["color"].correct, 1);
  EXPECT_EQ(d.attr["position"].stated, 1);
  EXPECT_EQ(d.attr["position"].correct, 0);
  EXPECT_EQ(d.attr["size"].stated, 0);
  ASSERT_EQ(d.hallucinated_items.size(), 1u);
  EXPECT_EQ(d.hallucinated_items[0], "green triangle");
  EXPECT_EQ(d.missed_items, (std::vector<std::string>{"blue square", "red star"}));
}

TEST(WorldMetrics, CountsNegationAndWrongColour) {
  auto d = score_description(hand_scene(), "Two blue squares are in the center. There is no yellow star.");
  EXPECT_EQ(d.mentions, 2);  // the negated star is not a mention
  EXPECT_EQ(d.correct, 1);
  EXPECT_EQ(d.hallucinated, 1);
  EXPECT_EQ(d.shape_hallucinated, 0);
  EXPECT_DOUBLE_EQ(d.recall(), 1.0 / 3);
  // a circle of the wrong colour and size: a hallucinated category, but its place is right
  auto w = score_description(hand_scene(), "A small purple circle sits in the top left.");
  EXPECT_EQ(w.mentions, 1);
  EXPECT_EQ(w.correct, 0);
  EXPECT_DOUBLE_EQ(w.chair_i(), 1.0);
  EXPECT_EQ(w.attr["color"].correct, 0);
  EXPECT_EQ(w.attr["color"].stated, 1);
  EXPECT_EQ(w.attr["size"].correct, 0);
  EXPECT_EQ(w.attr["position"].correct, 1);
  // the generator's own text scores perfectly
  Rng rng(5);
  Scene s = hand_scene();
  for (int i = 0; i < 8; ++i) {
    auto r = score_description(s, normal_response(s, i, rng));
    EXPECT_EQ(r.correct, 3) << normal_response(s, i, rng);
    EXPECT_EQ(r.mentions, 3);
    EXPECT_EQ(r.attr["position"].correct, 3);
  }
  auto st = score_description(s, step_by_step_response(s, rng));
  EXPECT_EQ(st.mentions, 3);
  std::vector<WorldObject> inv;
  auto h = score_description(s, hallucinated_response(s, 0, rng, &inv));
  EXPECT_EQ(h.correct, 3);
  EXPECT_EQ(h.hallucinated, static_cast<int>(inv.size()));
}

TEST(WorldMetrics, ShortAnswers) {
  std::string p;
  EXPECT_TRUE(score_answer("count", "3", "3", &p));
  EXPECT_TRUE(score_answer("count", "3", "There are three objects.", &p));
  EXPECT_EQ(p, "3");
  EXPECT_FALSE(score_answer("count", "3", "4"));
  EXPECT_TRUE(score_answer("color", "red", "Red."));
  EXPECT_FALSE(score_answer("color", "red", "orange"));
  EXPECT_TRUE(score_answer("shape", "circle", "a circle"));
  EXPECT_TRUE(score_answer("size", "large", "big"));
  EXPECT_TRUE(score_answer("position", "top left", "upper left"));
  EXPECT_FALSE(score_answer("position", "top left", "top"));
  EXPECT_TRUE(score_answer("existence", "Yes", "Yes"));
  EXPECT_TRUE(score_answer("existence", "No", "No, there is not."));
  EXPECT_TRUE(score_answer("choice", "B", "B"));
  EXPECT_TRUE(score_answer("choice", "B", "(B) red"));
  EXPECT_TRUE(score_answer("choice", "C", "The answer is C."));
  EXPECT_TRUE(score_answer("choice", "C", "green", nullptr, {"red", "blue", "green", "pink"}));
  EXPECT_FALSE(score_answer("choice", "C", "B"));
  EXPECT_EQ(pope_yes_no("No."), "no");
  EXPECT_EQ(pope_yes_no("Yes, there is."), "yes");
}

std::string make_world(const std::string& name) {
  const std::string d = std::string(STIC_BINARY_DIR) + "/test-tmp/" + name;
  stic::remove_tree(d);
  WorldOptions o;
  o.out = d;
  o.preset = "world-smoke";
  o.seed = 11;
  o.progress = false;
  build_world(o);
  return d;
}

TEST(WorldMetrics, ScoreWorldPerfectAndAlwaysYes) {
  const std::string d = make_world("world-score");
  std::ifstream in(d + "/gt/eval_answers.jsonl");
  std::string line, perfect, yes;
  int n = 0, pope_n = 0;
  while (std::getline(in, line)) {
    auto a = json::parse(line);
    perfect += json({{"id", a["id"]}, {"text", a["answer"]}}).dump() + "\n";
    if (a["type"] == "pope") {
      yes += json({{"id", a["id"]}, {"text", "Yes"}}).dump() + "\n";
      ++pope_n;
    }
    ++n;
  }
  { std::ofstream(d + "/perfect.jsonl") << perfect << "{\"id\": \"nope\", \"text\": \"x\"}\n"; }
  ScoreOptions so;
  so.out_dir = d + "/scores";
  auto w = score_world(d, d + "/perfect.jsonl", so);
  EXPECT_EQ(w.scored, n);
  EXPECT_EQ(w.unknown_ids, 1);
  EXPECT_EQ(w.missing, 0);
  EXPECT_DOUBLE_EQ(w.desc.precision(), 1.0);
  EXPECT_DOUBLE_EQ(w.desc.recall(), 1.0);
  EXPECT_DOUBLE_EQ(w.chair_s(), 0.0);
  for (const auto& [k, v] : w.vqa) EXPECT_DOUBLE_EQ(v.accuracy(), 1.0) << k;
  EXPECT_DOUBLE_EQ(w.pope.at("all").accuracy(), 1.0);
  EXPECT_TRUE(fs::exists(d + "/scores/summary.md"));
  EXPECT_TRUE(fs::exists(d + "/scores/per_item.jsonl"));
  EXPECT_NE(stic::read_text_file(d + "/scores/summary.md").find("| precision | recall | CHAIR_i"), std::string::npos);

  { std::ofstream(d + "/yes.jsonl") << yes; }
  auto y = score_world(d, d + "/yes.jsonl");
  const auto& all = y.pope.at("all");
  EXPECT_EQ(all.n(), pope_n);
  EXPECT_DOUBLE_EQ(all.yes_ratio(), 1.0);
  EXPECT_DOUBLE_EQ(all.recall(), 1.0);
  EXPECT_DOUBLE_EQ(all.precision(), 0.5);
  EXPECT_DOUBLE_EQ(all.accuracy(), 0.5);
  EXPECT_EQ(y.missing, n - pope_n);

  { std::ofstream(d + "/bad.jsonl") << perfect.substr(0, 40) << "\n{oops\n"; }
  try {
    score_world(d, d + "/bad.jsonl");
    FAIL();
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1: not valid JSON"), std::string::npos) << e.what();
  }
}

}  // namespace
