// stic's --image-backend torchvision against transformers' own torchvision image processors
// (transformers 5's default CLIPImageProcessor / LlavaImageProcessor / LlavaNextImageProcessor)
// on the committed photos. The fixture, tests/fixtures/image_expected/tv_pixels.safetensors (+
// tv_settings.json), is written by tools/make_tv_image_fixtures.py on a machine with
// transformers >= 5, torch and torchvision; while it is absent these tests skip.
//
// Tolerance: none. Every step is reproduced exactly (integer resize, crop / pad, float32
// rescale + normalise with torch's rounding), so the uint8 crops must match byte for byte and
// pixel_values bit for bit (max abs error 0). The fixture stores pixel_values losslessly as a
// uint8 level per element plus the processor's float32 value of each level (the script checks
// that lut[c][level] reproduces every element before writing).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/image/image.h"
#include "stic/io/safetensors.h"
#include "stic/util/fs.h"

namespace {

const std::string kRoot = STIC_SOURCE_DIR;
const std::string kFixture = kRoot + "/tests/fixtures/image_expected/tv_pixels.safetensors";
const char* kSkip =
    "tests/fixtures/image_expected/tv_pixels.safetensors is absent: write it with "
    "`python3 tools/make_tv_image_fixtures.py` (transformers >= 5, torch, torchvision; CPU only)";

struct Case {
  std::string mode, photo;   // crop | pad | anyres; tests/fixtures/images/...
  torch::Tensor levels;      // uint8 [n, 3, H, W]
  torch::Tensor lut;         // float32 [3, 256]
};

std::vector<Case> cases(const stic::SafetensorsFile& f) {
  std::vector<Case> out;
  for (const auto& [name, e] : f.entries()) {
    const std::string suffix = "/levels";
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string key = name.substr(0, name.size() - suffix.size());
    const size_t slash = key.find('/');
    Case c;
    c.mode = key.substr(0, slash);
    c.photo = key.substr(slash + 1);
    c.levels = f.get(name);
    c.lut = f.get(key + "/lut").to(torch::kFloat32);
    out.push_back(std::move(c));
  }
  return out;
}

stic::AspectMode mode_of(const std::string& m) {
  if (m == "pad") return stic::AspectMode::Pad;
  if (m == "anyres") return stic::AspectMode::Anyres;
  return stic::AspectMode::Crop;
}

// stic's uint8 crops (CHW per crop, stacked) for a mode, before normalisation.
torch::Tensor stic_crops(const stic::Image& im, const std::string& mode, const stic::ClipPreprocessConfig& cfg) {
  std::vector<stic::Image> crops;
  if (mode == "crop") crops.push_back(stic::clip_resize_crop(im, cfg));
  else if (mode == "pad") crops.push_back(stic::clip_resize_crop(stic::expand_to_square(im, stic::mean_fill_color(cfg)), cfg));
  else
    for (const auto& c : stic::anyres_crops(im, cfg, stic::default_llava_pinpoints())) crops.push_back(stic::clip_resize_crop(c, cfg));
  std::vector<torch::Tensor> ts;
  for (const auto& c : crops)
    ts.push_back(torch::from_blob(const_cast<uint8_t*>(c.rgb.data()), {c.height, c.width, 3}, torch::kUInt8)
                     .permute({2, 0, 1})
                     .clone());
  return torch::stack(ts);
}

// pixel_values as the processor returned them: lut[c][levels].
torch::Tensor expected_pixels(const Case& c) {
  auto lv = c.levels.to(torch::kLong);
  std::vector<torch::Tensor> per_c;
  for (int ch = 0; ch < 3; ++ch) per_c.push_back(c.lut[ch].index({lv.select(1, ch)}));
  return torch::stack(per_c, 1);
}

}  // namespace

TEST(TorchvisionBackendFixture, ResizeEqualsTvfResize) {
  if (!stic::file_exists(kFixture)) GTEST_SKIP() << kSkip;
  stic::SafetensorsFile f(kFixture);
  int n = 0;
  for (const auto& [name, e] : f.entries()) {
    if (name.rfind("resize/", 0) != 0) continue;
    const size_t x = name.rfind('/');
    const std::string photo = name.substr(7, x - 7);
    int w = 0, h = 0;
    ASSERT_EQ(std::sscanf(name.c_str() + x + 1, "%dx%d", &w, &h), 2) << name;
    const stic::Image r = stic::image_resize_torchvision(stic::image_load(kRoot + "/" + photo), w, h);
    const torch::Tensor want = f.get(name);  // uint8 [h, w, 3]
    ASSERT_EQ(want.size(0), h);
    ASSERT_EQ(want.size(1), w);
    const torch::Tensor got = torch::from_blob(const_cast<uint8_t*>(r.rgb.data()), {h, w, 3}, torch::kUInt8);
    const int64_t differ = got.ne(want).sum().item<int64_t>();
    EXPECT_EQ(differ, 0) << name << ": " << differ << " of " << want.numel() << " bytes differ, max |diff| "
                         << (got.to(torch::kInt) - want.to(torch::kInt)).abs().max().item<int>();
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(TorchvisionBackendFixture, PixelValuesEqualHfTorchvisionProcessors) {
  if (!stic::file_exists(kFixture)) GTEST_SKIP() << kSkip;
  stic::SafetensorsFile f(kFixture);
  const auto cs = cases(f);
  ASSERT_GE(cs.size(), 8u);
  for (const auto& c : cs) {
    SCOPED_TRACE(c.mode + " " + c.photo);
    const stic::Image im = stic::image_load(kRoot + "/" + c.photo);
    stic::ClipPreprocessConfig cfg;  // 336 / 336, CLIP mean and std: the fixture's settings
    cfg.backend = stic::ImageBackend::Torchvision;
    // the uint8 stage: byte for byte
    const torch::Tensor crops = stic_crops(im, c.mode, cfg);
    ASSERT_EQ(crops.sizes().vec(), c.levels.sizes().vec());
    const int64_t level_diffs = crops.ne(c.levels).sum().item<int64_t>();
    EXPECT_EQ(level_diffs, 0) << level_diffs << " of " << crops.numel() << " uint8 values differ";
    // pixel_values: bit for bit
    const stic::PixelBatch b = stic::preprocess_image(im, mode_of(c.mode), cfg, stic::default_llava_pinpoints());
    const torch::Tensor got =
        torch::from_blob(const_cast<float*>(b.data.data()), {b.n, b.c, b.h, b.w}, torch::kFloat32);
    const torch::Tensor want = expected_pixels(c);
    ASSERT_EQ(got.sizes().vec(), want.sizes().vec());
    ASSERT_FALSE(want.isnan().any().item<bool>());
    const int64_t differ = got.ne(want).sum().item<int64_t>();
    const double max_err = (got - want).abs().max().item<double>();
    EXPECT_EQ(differ, 0) << differ << " of " << want.numel() << " values differ, max abs error " << max_err;
    EXPECT_EQ(max_err, 0.0);
    // each level's value: the fused normalisation
    std::vector<float> lut(3 * 256);
    stic::Image ramp;
    ramp.width = 256;
    ramp.height = 1;
    for (int v = 0; v < 256; ++v) ramp.rgb.insert(ramp.rgb.end(), {uint8_t(v), uint8_t(v), uint8_t(v)});
    stic::normalize_to_chw(ramp, cfg, lut.data());
    for (int ch = 0; ch < 3; ++ch)
      for (int v = 0; v < 256; ++v) {
        const float w = c.lut[ch][v].item<float>();
        if (!std::isnan(w)) {
          EXPECT_EQ(lut[ch * 256 + v], w) << "channel " << ch << " level " << v;
        }
      }
  }
}

// The PIL backend is a different computation: its uint8 crops differ from torchvision's on a few
// pixels (one level, ~0.1%), and its normalisation rounds differently on some levels.
TEST(TorchvisionBackendFixture, PilBackendDiffersFromTorchvision) {
  if (!stic::file_exists(kFixture)) GTEST_SKIP() << kSkip;
  stic::SafetensorsFile f(kFixture);
  int64_t level_diffs = 0, total = 0, value_diffs = 0, big = 0;
  for (const auto& c : cases(f)) {
    const stic::Image im = stic::image_load(kRoot + "/" + c.photo);
    stic::ClipPreprocessConfig cfg;  // Pil
    const torch::Tensor crops = stic_crops(im, c.mode, cfg);
    if (crops.sizes().vec() != c.levels.sizes().vec()) continue;
    const torch::Tensor d = (crops.to(torch::kInt) - c.levels.to(torch::kInt)).abs();
    level_diffs += d.ne(0).sum().item<int64_t>();
    big += d.gt(2).sum().item<int64_t>();
    total += d.numel();
    const stic::PixelBatch b = stic::preprocess_image(im, mode_of(c.mode), cfg, stic::default_llava_pinpoints());
    const torch::Tensor got =
        torch::from_blob(const_cast<float*>(b.data.data()), {b.n, b.c, b.h, b.w}, torch::kFloat32);
    value_diffs += got.ne(expected_pixels(c)).sum().item<int64_t>();
  }
  ASSERT_GT(total, 0);
  std::printf("pil vs torchvision: %lld of %lld uint8 values differ (%.3f%%), %lld by more than 2 levels; "
              "%lld pixel_values differ\n",
              static_cast<long long>(level_diffs), static_cast<long long>(total), 100.0 * level_diffs / total,
              static_cast<long long>(big), static_cast<long long>(value_diffs));
  EXPECT_GT(level_diffs, 0) << "the PIL backend's crops equal torchvision's: the backends are not distinct";
  EXPECT_LT(static_cast<double>(level_diffs) / total, 0.02) << level_diffs << " of " << total;
  EXPECT_LT(static_cast<double>(big) / total, 0.001) << big << " values more than 2 levels apart";
  EXPECT_GE(value_diffs, level_diffs);
}
