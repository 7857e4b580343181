// Unit tests of the torchvision image backend (stic --image-backend torchvision): ATen's uint8
// antialiased resize by hand on tiny images, the centre crop and the fused normalisation.
// The comparison with transformers' own torchvision processors on the photos is
// tests/unit/torch_image_backend.cpp (fixture from tools/make_tv_image_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "stic/image/image.h"
#include "stic/util/error.h"

namespace {

// One-row (or one-column) image with the same value in all three channels.
stic::Image row_image(const std::vector<uint8_t>& v, bool vertical = false) {
  stic::Image im;
  im.width = vertical ? 1 : static_cast<int>(v.size());
  im.height = vertical ? static_cast<int>(v.size()) : 1;
  for (uint8_t x : v) im.rgb.insert(im.rgb.end(), {x, x, x});
  return im;
}

std::vector<int> channel(const stic::Image& im, int c) {
  std::vector<int> out;
  for (size_t i = c; i < im.rgb.size(); i += 3) out.push_back(im.rgb[i]);
  return out;
}

}  // namespace

// 4 -> 2, bicubic (a = -0.5), antialiased. scale = 2, support = 2 * 2 = 4, 9 taps at most.
// Output 0: center = 2 * 0.5 = 1, window [max(int(1 - 4 + .5), 0), min(int(1 + 4 + .5), 4)) = [0, 4),
// taps f((j - 1 + .5) / 2) = f(-.25), f(.25), f(.75), f(1.25) = 111/128, 111/128, 29/128, -9/128
// (f(x) = 1.5|x|^3 - 2.5|x|^2 + 1 inside 1, -.5|x|^3 + 2.5|x|^2 - 4|x| + 2 outside), sum 242/128,
// so the weights are 111/242, 111/242, 29/242, -9/242. Output 1 is the mirror image.
// Largest weight 111/242: 111/242 * 2^16 = 30059.9 < 2^15 ... 2^17 overflows, so p = 16 and the
// int16 weights are round(w * 65536) = 30060, 30060, 7853, -2437 (they sum to 65536).
// Row [10, 50, 200, 30]: (10*30060 + 50*30060 + 200*7853 - 30*2437 + 32768) >> 16 = 50,
//                        (-10*2437 + 50*7853 + 200*30060 + 30*30060 + 32768) >> 16 = 111.
// Row [0, 0, 55, 110]:   (55*7853 - 110*2437 + 32768) >> 16 = 196613 >> 16 = 3 — exactly 2.5
// before rounding; Pillow's 22-bit weights (502623, -155987) give 12582847 >> 22 = 2.
TEST(TorchvisionResize, Downscale4To2ByHand) {
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({10, 50, 200, 30}), 2, 1), 0),
            (std::vector<int>{50, 111}));
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({0, 0, 55, 110}), 2, 1), 0),
            (std::vector<int>{3, 76}));
  EXPECT_EQ(channel(stic::image_resize(row_image({0, 0, 55, 110}), 2, 1), 0), (std::vector<int>{2, 76}))
      << "Pillow rounds the same row differently (the two backends are distinct)";
  // the same along y: the vertical pass uses the same taps
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({10, 50, 200, 30}, true), 1, 2), 0),
            (std::vector<int>{50, 111}));
}

// 2 -> 4, bicubic: scale = .5 < 1, so no stretching: support 2, invscale 1.
// Output i: center = (i + .5) / 2 = .25, .75, 1.25, 1.75; the window is [0, 2) for all four;
// taps f(j - center + .5): i = 0: f(.25), f(1.25) = 111/128, -9/128 -> 37/34, -3/34;
// i = 1: f(-.25), f(.75) -> 111/140, 29/140; i = 2: 29/140, 111/140; i = 3: -3/34, 37/34.
// Largest 37/34: 37/34 * 2^14 = 17829.6, * 2^15 overflows, so p = 14; int16 weights
// 17830, -1446 | 12990, 3394 | 3394, 12990 | -1446, 17830 (each pair sums to 16384).
// [0, 255]:   (-1446*255 + 8192) >> 14 = -23 -> 0, (3394*255 + 8192) >> 14 = 53,
//             (12990*255 + 8192) >> 14 = 202, (17830*255 + 8192) >> 14 = 278 -> 255.
// [100, 200]: (1783000 - 289200 + 8192) >> 14 = 91, (1299000 + 678800 + 8192) >> 14 = 121,
//             (339400 + 2598000 + 8192) >> 14 = 179, (-144600 + 3566000 + 8192) >> 14 = 209.
TEST(TorchvisionResize, Upscale2To4ByHand) {
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({0, 255}), 4, 1), 0),
            (std::vector<int>{0, 53, 202, 255}));
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({100, 200}), 4, 1), 0),
            (std::vector<int>{91, 121, 179, 209}));
}

// 4x4 -> 2x2 in both directions at once: R varies along x as [10, 50, 200, 30], G along y as
// [0, 0, 55, 110], B is 200 everywhere. The horizontal pass runs first (rows of R give 50, 111;
// constant rows of G and B stay as they are since the weights sum to 2^16), then the vertical
// pass (constant columns of R and B stay; G's column gives 3 and
// (55*30060 + 110*30060 + 32768) >> 16 = 76).
TEST(TorchvisionResize, TwoPasses4x4To2x2ByHand) {
  const int rx[4] = {10, 50, 200, 30}, gy[4] = {0, 0, 55, 110};
  stic::Image im;
  im.width = im.height = 4;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      im.rgb.insert(im.rgb.end(), {static_cast<uint8_t>(rx[x]), static_cast<uint8_t>(gy[y]), uint8_t{200}});
  const stic::Image out = stic::image_resize_torchvision(im, 2, 2);
  ASSERT_EQ(out.width, 2);
  ASSERT_EQ(out.height, 2);
  EXPECT_EQ(channel(out, 0), (std::vector<int>{50, 111, 50, 111}));
  EXPECT_EQ(channel(out, 1), (std::vector<int>{3, 3, 76, 76}));
  EXPECT_EQ(channel(out, 2), (std::vector<int>{200, 200, 200, 200}));
}

// Bilinear (triangle filter, support 1 stretched to 2), 4 -> 2: weights 3/7, 3/7, 1/7 on [0, 3)
// and 1/7, 3/7, 3/7 on [1, 4); p = 16: 28087, 28087, 9362.
// [10, 50, 200, 30]: (60*28087 + 200*9362 + 32768) >> 16 = 54; (50*9362 + 230*28087 + 32768) >> 16 = 106.
TEST(TorchvisionResize, BilinearByHand) {
  EXPECT_EQ(channel(stic::image_resize_torchvision(row_image({10, 50, 200, 30}), 2, 1, stic::Resample::Bilinear), 0),
            (std::vector<int>{54, 106}));
}

TEST(TorchvisionResize, SameSizeCopiesAndBadArgumentsThrow) {
  const stic::Image im = row_image({1, 2, 3});
  EXPECT_EQ(stic::image_resize_torchvision(im, 3, 1).rgb, im.rgb);
  EXPECT_THROW(stic::image_resize_torchvision(im, 0, 1), stic::Error);
  EXPECT_THROW(stic::image_resize_torchvision(im, 2, 1, stic::Resample::Nearest), stic::Error);
}

// A flat image stays flat and every pixel of a larger image stays within its range (the
// weights of each output pixel sum to 2^p).
TEST(TorchvisionResize, FlatStaysFlatAtManySizes) {
  stic::Image im;
  im.width = 37;
  im.height = 23;
  im.rgb.assign(static_cast<size_t>(37 * 23 * 3), 173);
  for (auto [w, h] : {std::pair{5, 3}, {336, 224}, {37, 100}, {1, 1}, {80, 23}}) {
    const stic::Image r = stic::image_resize_torchvision(im, w, h);
    ASSERT_EQ(r.rgb.size(), static_cast<size_t>(w) * h * 3);
    for (uint8_t v : r.rgb) ASSERT_EQ(v, 173) << w << "x" << h;
  }
}

TEST(TorchvisionBackend, ParseAndNames) {
  EXPECT_EQ(stic::parse_image_backend("pil"), stic::ImageBackend::Pil);
  EXPECT_EQ(stic::parse_image_backend("torchvision"), stic::ImageBackend::Torchvision);
  EXPECT_THROW(stic::parse_image_backend("cv2"), stic::Error);
  EXPECT_STREQ(stic::image_backend_name(stic::ImageBackend::Torchvision), "torchvision");
  EXPECT_STREQ(stic::image_backend_name(stic::ImageBackend::Pil), "pil");
}

// torchvision folds rescale into normalise: y = (float(v) - mean * 255) / (std * 255), float32
// throughout (mean, std: float32 tensors; 1 / (1/255) taken as 255.0f by the float multiply).
TEST(TorchvisionBackend, FusedNormalisationFormula) {
  stic::ClipPreprocessConfig cfg;
  cfg.backend = stic::ImageBackend::Torchvision;
  stic::Image im;
  im.width = 256;
  im.height = 1;
  for (int v = 0; v < 256; ++v) im.rgb.insert(im.rgb.end(), {uint8_t(v), uint8_t(v), uint8_t(v)});
  std::vector<float> tv(3 * 256), pil(3 * 256);
  stic::normalize_to_chw(im, cfg, tv.data());
  cfg.backend = stic::ImageBackend::Pil;
  stic::normalize_to_chw(im, cfg, pil.data());
  int differ = 0;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float m = cfg.mean[c] * 255.0f, s = cfg.std[c] * 255.0f;
      EXPECT_EQ(tv[c * 256 + v], (static_cast<float>(v) - m) / s);
      EXPECT_NEAR(tv[c * 256 + v], (v / 255.0 - cfg.mean[c]) / cfg.std[c], 1e-6);
      differ += tv[c * 256 + v] != pil[c * 256 + v];
    }
  EXPECT_GT(differ, 0) << "the fused formula rounds differently from numpy's on some levels";
}

// TorchvisionBackend.center_crop pads floor((crop - size) / 2) before; the PIL backend ceil.
TEST(TorchvisionBackend, CenterCropPadsFloorBefore) {
  stic::Image im;
  im.width = 3;
  im.height = 3;
  im.rgb.assign(27, 255);
  stic::ClipPreprocessConfig cfg;
  cfg.shortest_edge = 3;  // no resize
  cfg.crop_h = cfg.crop_w = 6;
  cfg.backend = stic::ImageBackend::Torchvision;
  stic::Image tv = stic::clip_resize_crop(im, cfg);
  cfg.backend = stic::ImageBackend::Pil;
  stic::Image pil = stic::clip_resize_crop(im, cfg);
  ASSERT_EQ(tv.width, 6);
  ASSERT_EQ(pil.width, 6);
  // first row/column white: torchvision pads 1 before (3 // 2), PIL 2 (ceil(3 / 2))
  EXPECT_EQ(tv.rgb[(1 * 6 + 1) * 3], 255);
  EXPECT_EQ(tv.rgb[(1 * 6 + 0) * 3], 0);
  EXPECT_EQ(pil.rgb[(2 * 6 + 2) * 3], 255);
  EXPECT_EQ(pil.rgb[(1 * 6 + 1) * 3], 0);
  // one axis larger than the crop: pad the other, crop at int((h - ch) / 2.0)
  stic::Image tall;
  tall.width = 2;
  tall.height = 9;
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 2; ++x) tall.rgb.insert(tall.rgb.end(), {uint8_t(10 * y), 0, 0});
  cfg.backend = stic::ImageBackend::Torchvision;
  cfg.shortest_edge = 2;
  cfg.crop_h = 4;
  cfg.crop_w = 5;
  const stic::Image c = stic::clip_resize_crop(tall, cfg);
  ASSERT_EQ(c.width, 5);
  ASSERT_EQ(c.height, 4);
  EXPECT_EQ(c.rgb[(0 * 5 + 1) * 3], 20);  // rows 2..5 ((9 - 4) // 2 = 2); columns 1, 2 (pad 3 // 2 = 1)
  EXPECT_EQ(c.rgb[(3 * 5 + 2) * 3], 50);
  EXPECT_EQ(c.rgb[(0 * 5 + 0) * 3], 0);
  EXPECT_EQ(c.rgb[(0 * 5 + 3) * 3], 0);
}
