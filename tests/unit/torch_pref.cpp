// STIC's stage-1 data pieces that need no model: the prompt sets (the shipped file is the
// built-in default), the per-image draw (from seed and id alone, with the method's proportions
// and ranges), and the pair reader's located errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "stic/io/pref_records.h"
#include "stic/method/pref_data.h"
#include "stic/method/prefgen.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace {
namespace fs = std::filesystem;
#define kRepo std::string(STIC_SOURCE_DIR)

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string p = (fs::temp_directory_path() / ("stic_pref_" + std::to_string(::getpid()) + "_" + name)).string();
  std::ofstream(p) << text;
  return p;
}

TEST(PrefPrompts, ShippedFileIsTheBuiltInDefaultAndTheReleasedOneDiffersOnlyInWhitespace) {
  const auto& d = stic::default_pref_prompts();
  const auto f = stic::load_pref_prompts(kRepo + "/recipes/prompts/stic.json");
  EXPECT_EQ(f.preferred, d.preferred);
  EXPECT_EQ(f.normal, d.normal);
  EXPECT_EQ(f.hallucination, d.hallucination);
  EXPECT_EQ(d.normal.size(), 8u);
  EXPECT_EQ(d.hallucination.size(), 8u);
  EXPECT_EQ(std::count(d.preferred.begin(), d.preferred.end(), '\n'), 6);  // seven lines
  const auto r = stic::load_pref_prompts(kRepo + "/recipes/prompts/stic-released.json");
  EXPECT_NE(r.preferred, d.preferred);
  std::string squeezed;  // drop the released string's indentation and trailing spaces
  for (size_t i = 0; i < r.preferred.size(); ++i) {
    if (r.preferred[i] == ' ' && (i + 1 == r.preferred.size() || r.preferred[i + 1] == '\n' || r.preferred[i + 1] == ' ' ||
                                  (i > 0 && (r.preferred[i - 1] == '\n' || r.preferred[i - 1] == ' '))))
      continue;
    squeezed += r.preferred[i];
  }
  EXPECT_EQ(squeezed, d.preferred);
}

TEST(PrefPrompts, BadFilesAreLocatedErrors) {
  auto expect_error = [](const std::string& text, const std::string& needle) {
    const std::string p = write_tmp("prompts.json", text);
    try {
      stic::load_pref_prompts(p);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const stic::Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    fs::remove(p);
  };
  expect_error("{", "not valid JSON");
  expect_error(R"({"preferred": "p", "normal": ["a"], "hallucination": ["b"], "extra": 1})", "unknown key \"extra\"");
  expect_error(R"({"normal": ["a"], "hallucination": ["b"]})", "\"preferred\"");
  expect_error(R"({"preferred": "p", "normal": [], "hallucination": ["b"]})", "\"normal\"");
  expect_error(R"({"preferred": "p", "normal": ["a", 3], "hallucination": ["b"]})", "\"normal\"[1]");
}

TEST(PrefDraw, FromSeedAndIdAloneWithTheMethodsProportionsAndRanges) {
  const auto& p = stic::default_pref_prompts();
  const std::vector<std::string> both = {"lowres", "jitter"};
  int bad = 0, lowres = 0, jitter = 0;
  std::map<int, int> stored, hallu;
  for (int i = 0; i < 4000; ++i) {
    const std::string id = "COCO_" + std::to_string(i) + ".jpg";
    const auto d = stic::draw_pref(42, id, 0.5, both, p);
    const auto again = stic::draw_pref(42, id, 0.5, both, p);
    ASSERT_EQ(d.bad_prompt, again.bad_prompt);
    ASSERT_EQ(d.corruption.key(), again.corruption.key());
    ASSERT_EQ(d.stored_prompt, again.stored_prompt);
    bad += d.bad_prompt;
    ++stored[d.stored_prompt];
    ++hallu[d.hallu_prompt];
    if (d.corruption.kind == stic::ImageTransform::Kind::LowRes) {
      ++lowres;
      EXPECT_EQ(d.corruption.short_side, 20);
    } else {
      ++jitter;
      EXPECT_GE(d.corruption.brightness, 0.5f);
      EXPECT_LE(d.corruption.brightness, 1.5f);
      EXPECT_GE(d.corruption.hue, -0.3f);
      EXPECT_LE(d.corruption.hue, 0.3f);
    }
  }
  EXPECT_NEAR(bad, 2000, 150);      // p = 0.5
  EXPECT_NEAR(lowres, jitter, 300);  // each kind equally likely
  for (int k = 0; k < 8; ++k) {
    EXPECT_GT(stored[k], 350) << k;  // uniform over the 8 prompts (500 expected)
    EXPECT_GT(hallu[k], 350) << k;
  }
  // another seed or id changes the draw; p = 0 / 1 are all-corruption / all-prompt
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string id = std::to_string(i);
    auto all = [&](uint64_t seed) {
      const auto d = stic::draw_pref(seed, id, 0.5, both, p);
      return std::to_string(d.bad_prompt) + d.corruption.key() + "/" + std::to_string(d.stored_prompt) + "/" +
             std::to_string(d.hallu_prompt);
    };
    differ += all(1) != all(2);
    EXPECT_FALSE(stic::draw_pref(1, id, 0.0, both, p).bad_prompt);
    EXPECT_TRUE(stic::draw_pref(1, id, 1.0, both, p).bad_prompt);
    EXPECT_EQ(stic::draw_pref(1, id, 0.0, {"jitter"}, p).corruption.kind, stic::ImageTransform::Kind::Jitter);
  }
  EXPECT_GT(differ, 90);
  EXPECT_THROW(stic::draw_pref(1, "x", 0.5, {"blur"}, p), stic::Error);
  // a list with an unknown name among known ones fails before any image
  stic::PrefGenOptions o;
  o.image_dir = kRepo + "/tests/fixtures/images";
  o.out = (fs::temp_directory_path() / ("stic_pref_never_" + std::to_string(::getpid()) + ".jsonl")).string();
  o.model = "/nonexistent";
  o.corruptions = {"lowres", "blur"};
  EXPECT_THROW(stic::run_generate_pref(o), stic::Error);
  EXPECT_FALSE(fs::exists(o.out));
}

TEST(PrefRecords, BothLayoutsAndLocatedBadRecords) {
  const std::string pair = R"({"image": "a.jpg", "image_corruption": false, "hallu_prompt": "",
    "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
    "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]})";
  std::string flat = pair;
  flat.erase(std::remove(flat.begin(), flat.end(), '\n'), flat.end());
  const std::string jl = write_tmp("p.jsonl", flat + "\n{\"image\": \"b.jpg\", \"chosen\": []}\nnot json\n");
  std::vector<std::string> bad;
  auto recs = stic::read_pref_records(jl, [&](size_t, const std::string& w, const std::string& why) { bad.push_back(w + ": " + why); });
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(stic::pref_record_id(recs[0].j), "a.jpg");
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_NE(bad[0].find(jl + ": line 2: \"chosen\""), std::string::npos) << bad[0];
  EXPECT_NE(bad[1].find(jl + ": line 3: not valid JSON"), std::string::npos) << bad[1];
  const std::string js = write_tmp("p.json", "[" + pair + ", 5]");
  bad.clear();
  recs = stic::read_pref_records(js, [&](size_t, const std::string& w, const std::string& why) { bad.push_back(w + ": " + why); });
  ASSERT_EQ(recs.size(), 1u);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("element 1"), std::string::npos);
  fs::remove(jl);
  fs::remove(js);
}

}  // namespace
