// Unit tests of stic/world: deterministic scenes and images, text and QA against hand-built
// scenes, the world folder (pools, formats, resume, wrong-folder errors), the progress bar.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/progress.h"
#include "stic/world/scene.h"
#include "stic/world/text.h"
#include "stic/world/world.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace stic::world;

WorldObject obj(const std::string& shape, const std::string& color, const std::string& size, int row, int col) {
  WorldObject o;
  o.shape = static_cast<int>(std::find(shape_names().begin(), shape_names().end(), shape) - shape_names().begin());
  for (size_t i = 0; i < object_colors().size(); ++i)
    if (color == object_colors()[i].name) o.color = static_cast<int>(i);
  o.size = static_cast<int>(std::find(size_names().begin(), size_names().end(), size) - size_names().begin());
  o.row = row, o.col = col;
  o.cx = (col + 0.5) / 3, o.cy = (row + 0.5) / 3, o.radius = 0.1;
  return o;
}

// large red circle top left, small blue square center, medium red star bottom right
Scene hand_scene() {
  Scene s;
  s.id = "hand";
  s.image = "eval/hand.png";
  s.size = 48;
  s.objects = {obj("circle", "red", "large", 0, 0), obj("square", "blue", "small", 1, 1), obj("star", "red", "medium", 2, 2)};
  return s;
}

std::string slurp(const std::string& p) { return stic::read_text_file(p); }

std::vector<json> jsonl(const std::string& p) {
  std::vector<json> v;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

std::string tmpdir(const std::string& name) {
  const std::string d = std::string(STIC_BINARY_DIR) + "/test-tmp/" + name;
  stic::remove_tree(d);
  fs::create_directories(fs::path(d).parent_path());
  return d;
}

// ---------------------------------------------------------------- scenes and rendering
TEST(WorldScene, SameSeedSameBytes) {
  const Preset& p = find_preset("world-smoke");
  for (int i = 0; i < 20; ++i) {
    Scene a = world_scene(p, 7, "base", i), b = world_scene(p, 7, "base", i);
    const auto ia = render_scene(a), ib = render_scene(b);
    EXPECT_EQ(ia.rgb, ib.rgb);
    EXPECT_EQ(scene_to_json(a).dump(), scene_to_json(b).dump());
    Scene c = world_scene(p, 8, "base", i);
    EXPECT_NE(scene_to_json(a).dump(), scene_to_json(c).dump());
  }
}

TEST(WorldScene, OcclusionRuleAndGrid) {
  SceneParams sp;
  sp.size = 64;
  sp.min_objects = 4;
  sp.max_objects = 9;
  sp.overlap_jitter = 0.08;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Rng rng(seed);
    Scene s = sample_scene(rng, sp);
    ASSERT_GE(s.objects.size(), 1u);
    std::set<int> cells;
    for (const auto& o : s.objects) {
      EXPECT_TRUE(cells.insert(o.row * 3 + o.col).second) << "two objects share a cell";
      EXPECT_GE(o.visible, sp.min_visible - 1e-9);
      EXPECT_GE(o.cx - o.radius, -1e-9);
      EXPECT_LE(o.cx + o.radius, 1 + 1e-9);
    }
    Scene back = scene_from_json(scene_to_json(s), "test");
    EXPECT_EQ(scene_to_json(back).dump(), scene_to_json(s).dump());
  }
}

// Every preset snaps object centres to its ViT's patch centres, inside the object's own grid
// cell and with the whole object inside the image; and the snapping really moves objects (a
// scene sampled without it has centres off the patch grid).
TEST(WorldScene, CentresSnapToThePatchGrid) {
  for (const auto& p : presets()) {
    ASSERT_EQ(p.scene.snap, p.model.patch) << p.name;
    const double n = p.scene.size, patch = p.scene.snap;
    int off_grid_unsnapped = 0, objects = 0;
    for (int i = 0; i < 60; ++i) {
      const Scene s = world_scene(p, 3, "base", i);
      for (const auto& o : s.objects) {
        ++objects;
        for (const auto& [c, cell] : {std::pair{o.cx, o.col}, std::pair{o.cy, o.row}}) {
          const double px = c * n, k = px / patch - 0.5;
          EXPECT_NEAR(k, std::round(k), 0.01) << p.name << " " << s.id << ": centre " << px << " px is not a patch centre";
          EXPECT_GE(c, cell / 3.0) << p.name << " " << s.id;
          EXPECT_LT(c, (cell + 1) / 3.0) << p.name << " " << s.id;
          EXPECT_GE(c - o.radius, -1e-9) << p.name << " " << s.id;
          EXPECT_LE(c + o.radius, 1 + 1e-9) << p.name << " " << s.id;
        }
      }
      SceneParams free = p.scene;
      free.snap = 0;
      Rng rng(static_cast<uint64_t>(i));
      for (const auto& o : sample_scene(rng, free).objects) {
        const double k = o.cx * n / patch - 0.5;
        off_grid_unsnapped += std::fabs(k - std::round(k)) > 0.05;
      }
    }
    EXPECT_GT(objects, 60) << p.name;
    EXPECT_GT(off_grid_unsnapped, 30) << p.name << ": the unsnapped control should be off the grid";
  }
}

// train-vision's labels: cell row * 3 + col holds 1 + shape / colour index, 0 elsewhere; an object
// off the grid is an error naming the record.
TEST(WorldScene, CellLabels) {
  Scene s;
  WorldObject a, b;
  a.row = 0, a.col = 2, a.shape = 3, a.color = 0;
  b.row = 2, b.col = 1, b.shape = 0, b.color = 6;
  s.objects = {a, b};
  const CellLabels l = cell_labels(s, "x.jsonl: line 4");
  const std::array<int64_t, 9> shape{0, 0, 4, 0, 0, 0, 0, 1, 0}, color{0, 0, 1, 0, 0, 0, 0, 7, 0};
  EXPECT_EQ(l.shape, shape);
  EXPECT_EQ(l.color, color);
  s.objects[1].col = 3;  // row 2, col 3: cell 9 would be past the grid (and row 1, col 5 inside it)
  try {
    cell_labels(s, "x.jsonl: line 4");
    FAIL() << "an object off the grid was accepted";
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl: line 4: object outside the 3x3 grid (row 2, col 3)"), std::string::npos)
        << e.what();
  }
  s.objects[1].row = 1, s.objects[1].col = 5;
  EXPECT_THROW(cell_labels(s, "x"), stic::Error);
}

TEST(WorldScene, RenderedColoursAreThere) {
  Scene s = hand_scene();
  s.size = 96;
  s.background.color = 0;  // black
  s.objects[0].rgb = object_colors()[0].rgb;
  s.objects[1].rgb = object_colors()[4].rgb;
  s.objects[2].rgb = object_colors()[0].rgb;
  const auto im = render_scene(s);
  auto px = [&](double fx, double fy) {
    const int x = static_cast<int>(fx * s.size), y = static_cast<int>(fy * s.size);
    const uint8_t* p = &im.rgb[static_cast<size_t>((y * s.size + x) * 3)];
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  auto c = px(1.0 / 6, 1.0 / 6);  // the red circle's centre
  EXPECT_GT(c[0], 150);
  EXPECT_LT(c[2], 80);
  auto b = px(0.5, 0.5);  // the blue square
  EXPECT_GT(b[2], 150);
  EXPECT_LT(b[0], 80);
  auto bg = px(0.02, 0.98);  // background
  EXPECT_LT(bg[0] + bg[1] + bg[2], 120);
}

// ---------------------------------------------------------------- text and QA
TEST(WorldText, DescriptionMentionsEveryObject) {
  Scene s = hand_scene();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    const std::string d = detailed_description(s, rng);
    EXPECT_NE(d.find("large red circle"), std::string::npos) << d;
    EXPECT_NE(d.find("small blue square"), std::string::npos) << d;
    EXPECT_NE(d.find("medium red star"), std::string::npos) << d;
    EXPECT_NE(d.find("top left"), std::string::npos) << d;
    EXPECT_NE(d.find("three objects"), std::string::npos) << d;
  }
  Rng rng(1);
  EXPECT_EQ(with_article("orange star"), "an orange star");
  EXPECT_EQ(background_phrase(s), "a plain black background");
  std::vector<WorldObject> inv;
  const std::string h = hallucinated_response(s, 0, rng, &inv);
  ASSERT_FALSE(inv.empty());
  for (const auto& o : inv) {
    EXPECT_NE(h.find(object_phrase(o)), std::string::npos);
    for (const auto& r : s.objects) EXPECT_FALSE(r.shape == o.shape && r.color == o.color) << "invented a present object";
  }
  EXPECT_EQ(normal_prompts().size(), 8u);
  EXPECT_EQ(hallucination_prompts().size(), 8u);
}

// An independent reading of each question against the hand-built scene.
std::string expected_answer(const Scene& s, const QA& q) {
  std::smatch m;
  auto objects_where = [&](auto pred) {
    int n = 0;
    for (const auto& o : s.objects) n += pred(o);
    return n;
  };
  auto at = [&](const std::string& pos) -> const WorldObject* {
    for (const auto& o : s.objects)
      if (o.position() == pos) return &o;
    return nullptr;
  };
  const std::string& t = q.question;
  if (t == "How many objects are there in the image?") return std::to_string(s.objects.size());
  if (std::regex_match(t, m, std::regex("How many (\\w+) objects are there\\?")))
    return std::to_string(objects_where([&](const WorldObject& o) { return object_colors()[static_cast<size_t>(o.color)].name == m[1].str(); }));
  if (std::regex_match(t, m, std::regex("How many (\\w+) are there\\?")))
    return std::to_string(objects_where([&](const WorldObject& o) { return shape_plurals()[static_cast<size_t>(o.shape)] == m[1].str(); }));
  if (std::regex_match(t, m, std::regex("What color is the (\\w+) in the (.+)\\?"))) {
    auto o = at(m[2]);
    EXPECT_TRUE(o && shape_names()[static_cast<size_t>(o->shape)] == m[1].str()) << t;
    return o ? object_colors()[static_cast<size_t>(o->color)].name : "?";
  }
  if (std::regex_match(t, m, std::regex("What shape is (the \\w+ object )?in the (.+)\\?")) ||
      std::regex_match(t, m, std::regex("Which shape is (the \\w+ object )?in the (.+)\\?"))) {
    auto o = at(m[2]);
    return o ? shape_names()[static_cast<size_t>(o->shape)] : "?";
  }
  if (std::regex_match(t, m, std::regex("What size is the (\\w+ \\w+) in the (.+)\\?"))) {
    auto o = at(m[2]);
    EXPECT_TRUE(o && o->category() == m[1].str()) << t;
    return o ? size_names()[static_cast<size_t>(o->size)] : "?";
  }
  if (std::regex_match(t, m, std::regex("Where is the (\\w+ \\w+)\\?"))) {
    for (const auto& o : s.objects)
      if (o.category() == m[1].str()) return o.position();
    return "?";
  }
  if (std::regex_match(t, m, std::regex("Is there an? (\\w+ \\w+) in the image\\?"))) {
    const bool yes = objects_where([&](const WorldObject& o) { return o.category() == m[1].str(); }) > 0;
    return q.type == "pope" ? (yes ? "yes" : "no") : (yes ? "Yes" : "No");
  }
  if (t == "Which of these objects appears in the image?") {
    for (const auto& o : s.objects)
      if (with_article(o.category()) == q.answer) return "present";
    return "absent";
  }
  return "unparsed: " + t;
}

TEST(WorldText, QuestionAnswersMatchTheSceneGraph) {
  Scene s = hand_scene();
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    Rng rng(seed);
    for (const auto& type : qa_types()) {
      QA q = make_qa(s, type, rng);
      EXPECT_EQ(q.answer, expected_answer(s, q)) << q.question;
      seen.insert(q.question);
    }
    QA c = make_choice(s, rng);
    ASSERT_EQ(c.options.size(), 4u) << c.question;
    std::set<std::string> distinct(c.options.begin(), c.options.end());
    EXPECT_EQ(distinct.size(), 4u) << choice_text(c);
    ASSERT_TRUE(c.answer.size() == 1 && c.answer[0] >= 'A' && c.answer[0] <= 'D');
    const std::string chosen = c.options[static_cast<size_t>(c.answer[0] - 'A')];
    QA as_open = c;
    as_open.answer = chosen;
    const std::string want = expected_answer(s, as_open);
    if (want == "present" || want == "absent") EXPECT_EQ(want, "present") << choice_text(c);
    else EXPECT_EQ(chosen, want) << choice_text(c);
  }
  EXPECT_GT(seen.size(), 20u);
}

TEST(WorldText, PopeNegatives) {
  Scene s = hand_scene();
  for (const char* strat : {"random", "popular", "adversarial"}) {
    Rng rng(3);
    auto qs = pope_questions(s, strat, 3, rng);
    ASSERT_EQ(qs.size(), 6u);  // 3 distinct present categories + 3 negatives
    int yes = 0;
    for (const auto& q : qs) {
      EXPECT_EQ(q.answer, expected_answer(s, q)) << q.question;
      yes += q.answer == "yes";
    }
    EXPECT_EQ(yes, 3);
  }
  Rng rng(0);
  auto adv = absent_categories(s, "adversarial", rng);
  // the first adversarial negatives share a shape with a present object (circle, square, star)
  for (int i = 0; i < 3; ++i) {
    const int sh = adv[static_cast<size_t>(i)].first;
    EXPECT_TRUE(sh == 0 || sh == 1 || sh == 3) << shape_names()[static_cast<size_t>(sh)];
  }
  auto pop = absent_categories(s, "popular", rng);
  EXPECT_EQ(shape_names()[static_cast<size_t>(pop[0].first)] + object_colors()[static_cast<size_t>(pop[0].second)].name,
            "staryellow");  // P = 1/8 * 4/11, the most frequent absent category (red circle and blue square are present)
  EXPECT_THROW(absent_categories(s, "weird", rng), stic::Error);
}

// ---------------------------------------------------------------- the world folder
class SmokeWorld : public ::testing::Test {
 protected:
  static std::string dir() {
    static const std::string d = [] {
      const std::string d = tmpdir("world-smoke-a");
      WorldOptions o;
      o.out = d;
      o.preset = "world-smoke";
      o.seed = 3;
      o.progress = false;
      o.threads = 3;
      build_world(o);
      return d;
    }();
    return d;
  }
};

std::vector<std::string> all_files(const std::string& root) {
  std::vector<std::string> v;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) v.push_back(fs::relative(e.path(), root).string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(SmokeWorld, DeterministicFolder) {
  const std::string b = tmpdir("world-smoke-b");
  WorldOptions o;
  o.out = b;
  o.preset = "world-smoke";
  o.seed = 3;
  o.progress = false;
  o.threads = 1;  // the bytes do not depend on the thread count
  build_world(o);
  const auto fa = all_files(dir()), fb = all_files(b);
  ASSERT_EQ(fa, fb);
  for (const auto& f : fa) {
    if (f == "tokenizer/spm_train.log") continue;
    EXPECT_TRUE(slurp(dir() + "/" + f) == slurp(b + "/" + f)) << f << " differs between two runs with the same seed";
  }
}

TEST_F(SmokeWorld, PoolsAreDisjointAndComplete) {
  const Preset& p = find_preset("world-smoke");
  std::set<std::string> images, scenes_seen;
  for (const auto& pool : pool_names()) {
    const auto lines = jsonl(dir() + "/gt/" + pool + "_scenes.jsonl");
    ASSERT_EQ(static_cast<int>(lines.size()), pool_size(p, pool));
    for (const auto& j : lines) {
      EXPECT_TRUE(images.insert(j["image"].get<std::string>()).second);
      json objs = j["objects"];
      EXPECT_TRUE(scenes_seen.insert(objs.dump() + j["background"].dump()).second) << "same scene twice";
      EXPECT_TRUE(fs::exists(dir() + "/images/" + j["image"].get<std::string>()));
    }
  }
  // each file refers only to its pool
  auto base = json::parse(slurp(dir() + "/data/base_train.json"));
  ASSERT_EQ(static_cast<int>(base.size()), p.n_base);
  for (const auto& r : base) {
    EXPECT_EQ(r["image"].get<std::string>().rfind("base/", 0), 0u);
    const auto& conv = r["conversations"];
    ASSERT_GE(conv.size(), 2u);
    EXPECT_EQ(conv[0]["from"], "human");
    EXPECT_EQ(conv[0]["value"].get<std::string>().rfind("<image>\n", 0), 0u);
    for (size_t i = 1; i < conv.size(); ++i) EXPECT_EQ(conv[i]["value"].get<std::string>().find("<image>"), std::string::npos);
  }
  for (const auto& r : json::parse(slurp(dir() + "/data/stage2_sft.json")))
    EXPECT_EQ(r["image"].get<std::string>().rfind("stage2/", 0), 0u);
  std::istringstream ul(slurp(dir() + "/data/unlabeled_images.txt"));
  std::string line;
  int n = 0;
  while (std::getline(ul, line)) {
    EXPECT_EQ(line.rfind("unlabeled/", 0), 0u);
    ++n;
  }
  EXPECT_EQ(n, p.n_unlabeled);
  // the unlabeled images folder holds images only (labels live in gt/ and scenes/)
  for (const auto& e : fs::directory_iterator(dir() + "/images/unlabeled")) EXPECT_EQ(e.path().extension(), ".png");
  for (const auto& r : jsonl(dir() + "/eval/requests.jsonl"))
    EXPECT_EQ(r["image"].get<std::string>().rfind("eval/", 0), 0u);
}

TEST_F(SmokeWorld, EvalFormats) {
  // POPE
  const auto pope = jsonl(dir() + "/eval/pope.jsonl");
  ASSERT_FALSE(pope.empty());
  int yes = 0;
  for (const auto& q : pope) {
    ASSERT_TRUE(q.contains("question_id") && q.contains("image") && q.contains("text") && q.contains("label"));
    yes += q["label"] == "yes";
  }
  EXPECT_EQ(yes * 2, static_cast<int>(pope.size()));
  // MMBench TSV: header + one row per eval image, 10 columns, base64 PNG
  std::istringstream tsv(slurp(dir() + "/eval/mmbench.tsv"));
  std::string line;
  std::getline(tsv, line);
  EXPECT_EQ(line, "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage");
  int rows = 0;
  while (std::getline(tsv, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) cols.push_back(c);
    ASSERT_EQ(cols.size(), 10u) << line.substr(0, 200);
    EXPECT_EQ(cols[9].rfind("iVBORw0KGgo", 0), 0u);  // "\x89PNG\r\n\x1a\n" in base64
    EXPECT_TRUE(cols[7] == "A" || cols[7] == "B" || cols[7] == "C" || cols[7] == "D");
    ++rows;
  }
  EXPECT_EQ(rows, find_preset("world-smoke").n_eval);
  // requests and answers line up
  const auto req = jsonl(dir() + "/eval/requests.jsonl"), ans = jsonl(dir() + "/gt/eval_answers.jsonl");
  ASSERT_EQ(req.size(), ans.size());
  for (size_t i = 0; i < req.size(); ++i) {
    EXPECT_EQ(req[i]["id"], ans[i]["id"]);
    EXPECT_FALSE(req[i].contains("answer"));
  }
  // the model folder
  auto cfg = json::parse(slurp(dir() + "/model/config.json"));
  auto tc = json::parse(slurp(dir() + "/model/tokenizer_config.json"));
  const int spm = find_preset("world-smoke").model.spm_vocab;
  EXPECT_EQ(cfg["image_token_index"], spm);
  EXPECT_EQ(tc["added_tokens_decoder"][std::to_string(spm)]["content"], "<image>");
  EXPECT_GT(cfg["text_config"]["vocab_size"].get<int>(), spm);
  EXPECT_TRUE(fs::file_size(dir() + "/model/tokenizer.model") > 1000);
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("M"), "TQ==");
}

TEST_F(SmokeWorld, ResumeRedoesOnlyMissingImagesAndRepairsIndexes) {
  const std::string d = tmpdir("world-smoke-resume");
  fs::copy(dir(), d, fs::copy_options::recursive);
  const std::string png = d + "/images/eval/eval_000003.png", sj = d + "/scenes/base/base_000010.json";
  const std::string orig_png = slurp(png), orig_idx = slurp(d + "/data/base_train.json");
  fs::remove(png);
  fs::remove(sj);
  fs::remove(d + "/images/base/base_000011.png");
  fs::resize_file(d + "/data/base_train.json", 100);  // a truncated index
  { std::ofstream(d + "/images/base/base_000012.png.tmp.999.png") << "partial"; }  // a killed run's temp
  WorldOptions o;
  o.out = d;
  o.preset = "world-smoke";
  o.seed = 3;
  o.progress = false;
  const auto s = build_world(o);
  EXPECT_EQ(s.images_rendered, 3);
  EXPECT_EQ(s.images_skipped, s.images_total - 3);
  EXPECT_FALSE(s.tokenizer_trained);
  EXPECT_EQ(slurp(png), orig_png);
  EXPECT_EQ(slurp(d + "/data/base_train.json"), orig_idx);
  EXPECT_FALSE(fs::exists(d + "/images/base/base_000012.png.tmp.999.png"));
}

TEST_F(SmokeWorld, DifferentWorldInFolderIsAnError) {
  WorldOptions o;
  o.out = dir();
  o.preset = "world-tiny";
  o.seed = 3;
  try {
    build_world(o);
    FAIL() << "expected an error";
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a different world (preset world-smoke, seed 3"), std::string::npos) << e.what();
  }
  o.preset = "world-smoke";
  o.seed = 4;
  EXPECT_THROW(build_world(o), stic::Error);
  const std::string other = tmpdir("not-a-world");
  fs::create_directories(other);
  { std::ofstream(other + "/x.txt") << "x"; }
  o.out = other;
  try {
    build_world(o);
    FAIL();
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a stic world"), std::string::npos) << e.what();
  }
}

TEST(WorldPresets, UnknownPresetListsValidNames) {
  try {
    find_preset("world-huge");
    FAIL();
  } catch (const stic::Error& e) {
    EXPECT_STREQ(e.what(), "unknown world preset 'world-huge' (valid presets: world-smoke, world-tiny, world-small)");
  }
  for (const auto& p : presets()) {
    EXPECT_EQ(p.scene.size % p.model.patch, 0) << p.name;
    EXPECT_EQ(p.model.text_hidden % p.model.text_heads, 0) << p.name;
    EXPECT_EQ(p.model.vision_hidden % p.model.vision_heads, 0) << p.name;
  }
}

TEST(Progress, LineAndDurations) {
  EXPECT_EQ(stic::Progress::format_duration(0), "0:00");
  EXPECT_EQ(stic::Progress::format_duration(65), "1:05");
  EXPECT_EQ(stic::Progress::format_duration(3725), "1:02:05");
  EXPECT_EQ(stic::Progress::format_duration(-1), "--:--");
  stic::Progress p(200, "work", false);
  p.update(50);
  const std::string l = p.render_line(10);
  EXPECT_EQ(l.rfind("work [##        ] 50/200  25.0%", 0), 0u) << l;
  EXPECT_NE(l.find("/s"), std::string::npos);
  EXPECT_NE(l.find("ETA"), std::string::npos);
  p.set(200);
  EXPECT_NE(p.render_line(10).find(" in "), std::string::npos);
  p.set_unit("images");  // generate-pref / describe count images
  EXPECT_NE(p.render_line(10).find(" images/s"), std::string::npos) << p.render_line(10);
}

}  // namespace

// remove_tree (util/fs.h): nested folders go, a symlink inside goes without its target.
TEST(Fs, RemoveTreeDeletesNestedFoldersButNotSymlinkTargets) {
  const fs::path root = fs::temp_directory_path() / ("stic_rm_" + std::to_string(::getpid()));
  stic::remove_tree(root.string());
  fs::create_directories(root / "a" / "b" / "c");
  fs::create_directories(root.string() + "_keep");
  std::ofstream(root / "a" / "b" / "c" / "f.txt") << "x";
  std::ofstream(root / "a" / "g.txt") << "y";
  std::ofstream(root.string() + "_keep/k.txt") << "z";
  fs::create_directory_symlink(root.string() + "_keep", root / "a" / "link");
  EXPECT_TRUE(stic::remove_tree(root.string()));
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(root.string() + "_keep/k.txt"));
  EXPECT_TRUE(stic::remove_tree(root.string()));  // absent: fine
  EXPECT_TRUE(stic::remove_tree(root.string() + "_keep"));
}
