// Unit tests of stic/image: decoding, Pillow-exact resampling, HF CLIP/LLaVA preprocessing.
//
// Expected values come from tools/make-image-fixtures.py (PIL + numpy, following Pillow and
// HF transformers' PIL-backend processors) and live in tests/fixtures/image_expected/. Images
// are compared by SHA-256 of their bytes (uint8 RGB, HWC; float32 NCHW for pixel_values); on a
// mismatch the per-channel sums tell how far off we are.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/image/image.h"
#include "stic/util/error.h"

namespace {

using nlohmann::json;

const std::string kRoot = STIC_SOURCE_DIR;

// ---- SHA-256 (FIPS 180-4), for comparing against hashlib ------------------------------------
std::string sha256_hex(const void* data, size_t len) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  std::vector<uint8_t> msg(static_cast<const uint8_t*>(data),
                           static_cast<const uint8_t*>(data) + len);
  const uint64_t bits = static_cast<uint64_t>(len) * 8;
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<uint8_t>(bits >> (i * 8)));
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t(msg[off + 4 * i]) << 24) | (uint32_t(msg[off + 4 * i + 1]) << 16) |
             (uint32_t(msg[off + 4 * i + 2]) << 8) | uint32_t(msg[off + 4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = hh + S1 + ch + k[i] + w[i];
      const uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
      const uint32_t t2 = S0 + mj;
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  char out[65];
  for (int i = 0; i < 8; ++i) std::snprintf(out + i * 8, 9, "%08x", h[i]);
  return std::string(out, 64);
}

const json& expected() {
  static const json j = [] {
    std::ifstream f(kRoot + "/tests/fixtures/image_expected/expected.json");
    if (!f) throw std::runtime_error("missing tests/fixtures/image_expected/expected.json");
    return json::parse(f);
  }();
  return j;
}

std::string path_of(const std::string& rel) { return kRoot + "/" + rel; }

// Compares an image with an expected {w, h, sha256, sums} entry.
::testing::AssertionResult matches(const stic::Image& im, const json& e) {
  if (im.width != e["w"].get<int>() || im.height != e["h"].get<int>())
    return ::testing::AssertionFailure()
           << "size " << im.width << "x" << im.height << ", expected " << e["w"] << "x"
           << e["h"];
  if (sha256_hex(im.rgb.data(), im.rgb.size()) == e["sha256"].get<std::string>())
    return ::testing::AssertionSuccess();
  long long sums[3] = {0, 0, 0};
  for (size_t i = 0; i < im.rgb.size(); ++i) sums[i % 3] += im.rgb[i];
  auto f = ::testing::AssertionFailure() << "pixels differ; channel sum diffs:";
  for (int c = 0; c < 3; ++c) f << " " << (sums[c] - e["sums"][c].get<long long>());
  return f;
}

::testing::AssertionResult matches_floats(const std::vector<float>& v, const std::string& sha) {
  if (sha256_hex(v.data(), v.size() * sizeof(float)) == sha)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "float32 pixel values differ from numpy's";
}

stic::Image load_rel(const std::string& rel) { return stic::image_load(path_of(rel)); }

std::string temp_file(const std::string& name, const std::string& contents) {
  const std::string p = ::testing::TempDir() + "stic_image_" + name;
  std::ofstream f(p, std::ios::binary);
  f << contents;
  return p;
}

// Expects image_load(path) to throw a stic::Error that names the path; returns the message.
std::string expect_load_error(const std::string& path) {
  try {
    stic::image_load(path);
  } catch (const stic::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": threw a non-stic exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << path << ": decoded without error";
  return "";
}

stic::Resample filter_of(const std::string& s) {
  if (s == "bicubic") return stic::Resample::Bicubic;
  if (s == "bilinear") return stic::Resample::Bilinear;
  return stic::Resample::Nearest;
}

}  // namespace

// ---- decoding -----------------------------------------------------------------------------

TEST(ImageDecode, EqualsPilConvertRgb) {
  int n = 0;
  for (const auto& [rel, e] : expected()["decode"].items()) {
    SCOPED_TRACE(rel);
    stic::Image im = load_rel(rel);
    EXPECT_TRUE(matches(im, e));
    ++n;
  }
  EXPECT_GE(n, 20);
}

TEST(ImageDecode, FromMemoryEqualsFile) {
  for (const char* rel : {"tests/fixtures/images/china.jpg", "tests/fixtures/images/logo.png"}) {
    std::ifstream f(path_of(rel), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    stic::Image a = stic::image_decode(reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size(), "mem");
    EXPECT_TRUE(matches(a, expected()["decode"][rel])) << rel;
  }
}

TEST(ImageDecode, BadInputsThrowWithPath) {
  // What PIL refuses (truncated.jpg, a JPEG cut mid-scan), we refuse.
  int n = 0;
  for (const auto& e : expected()["decode_errors"]) {
    const std::string path = path_of(e["path"].get<std::string>());
    const std::string msg = expect_load_error(path);
    EXPECT_NE(msg.find("truncated", path.size()), std::string::npos) << msg;
    ++n;
  }
  EXPECT_GE(n, 2);
  expect_load_error(temp_file("empty.jpg", ""));
  expect_load_error(temp_file("text.jpg", "this is not an image\n"));
  expect_load_error(temp_file("fake.png", std::string("\x89PNG\r\n\x1a\n", 8) + "garbage"));
  expect_load_error(temp_file("soi_only.jpg", std::string("\xff\xd8\xff\xe0", 4)));
  expect_load_error(kRoot + "/tests/fixtures/images/does_not_exist.png");
  // From memory: the name given appears in the message.
  try {
    const uint8_t junk[4] = {1, 2, 3, 4};
    stic::image_decode(junk, sizeof junk, "record 17 of bench.tsv");
    ADD_FAILURE() << "junk decoded";
  } catch (const stic::Error& e) {
    EXPECT_NE(std::string(e.what()).find("record 17 of bench.tsv"), std::string::npos);
  }
}

// Hostile files: refused before any pixel is decoded or any byte past the limit is read
TEST(ImageDecode, BombsDevicesAndDirectoriesAreRefusedFast) {
  auto be = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  // a PNG whose header claims 60000 x 60000 (PIL: DecompressionBombError)
  const std::string ihdr = "IHDR" + be(60000) + be(60000) + std::string("\x08\x02\x00\x00\x00", 5);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be(13) + ihdr + be(0) + be(0) + "IEND" + be(0);
  std::string msg = expect_load_error(temp_file("bomb.png", png));
  EXPECT_NE(msg.find("60000x60000 = 3600000000 pixels exceeds the limit of 178956970"), std::string::npos) << msg;
  // a JPEG header claiming 60000 x 60000 (SOF0), no scan
  const std::string jpg = std::string("\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
                                      "\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00\x00\xff\xd9", 39);
  msg = expect_load_error(temp_file("bomb.jpg", jpg));
  EXPECT_NE(msg.find("exceeds the limit"), std::string::npos) << msg;
  msg = expect_load_error("/dev/zero");
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  msg = expect_load_error(::testing::TempDir());
  EXPECT_NE(msg.find("a directory"), std::string::npos) << msg;
  EXPECT_EQ(stic::image_max_pixels(), 2 * 89478485);
  // a 1 x 60000 image decodes (60000 pixels) but would pad to a 60000^2 square, or resize to
  // 336 x 20,160,000: refused before allocating either
  stic::Image thin;
  thin.width = 1, thin.height = 60000;
  thin.rgb.assign(60000 * 3, 128);
  stic::ClipPreprocessConfig cfg;
  EXPECT_THROW(stic::preprocess_image(thin, stic::AspectMode::Pad, cfg, {}), stic::Error);
  EXPECT_THROW(stic::preprocess_image(thin, stic::AspectMode::Crop, cfg, {}), stic::Error);
  thin.width = 400, thin.height = 300;  // an ordinary size still goes through
  thin.rgb.assign(400 * 300 * 3, 128);
  EXPECT_NO_THROW(stic::preprocess_image(thin, stic::AspectMode::Pad, cfg, {}));
}

// PNG chunk CRCs are checked (as PIL does; stb_image would decode the corrupt data silently)
TEST(ImageDecode, PngChunkCrcAndTruncationAreLocatedErrors) {
  std::ifstream in(path_of("tests/fixtures/images/logo.png"), std::ios::binary);
  ASSERT_TRUE(in);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NO_THROW(stic::image_load(temp_file("good.png", good)));
  const size_t idat = good.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  std::string flipped = good;
  flipped[idat + 4 + 10] ^= 0x01;  // one bit of the compressed pixels
  std::string msg = expect_load_error(temp_file("flipped.png", flipped));
  EXPECT_NE(msg.find("flipped.png: PNG chunk 'IDAT' at byte " + std::to_string(idat - 4) + " fails its CRC check"),
            std::string::npos) << msg;
  msg = expect_load_error(temp_file("cut.png", good.substr(0, idat + 20)));
  EXPECT_NE(msg.find("cut.png: PNG chunk 'IDAT' at byte " + std::to_string(idat - 4) + " claims"), std::string::npos) << msg;
  msg = expect_load_error(temp_file("noend.png", good.substr(0, good.size() - 12)));  // IEND removed
  EXPECT_NE(msg.find("noend.png: PNG file is truncated (no IEND chunk)"), std::string::npos) << msg;
}

// ---- resampling ---------------------------------------------------------------------------

TEST(ImageResize, BitExactWithPillow) {
  int n = 0, bicubic = 0;
  for (const auto& [rel, entries] : expected()["resize"].items()) {
    const stic::Image im = load_rel(rel);
    for (const auto& e : entries) {
      const std::string filt = e["filter"].get<std::string>();
      SCOPED_TRACE(rel + " -> " + std::to_string(e["w"].get<int>()) + "x" +
                   std::to_string(e["h"].get<int>()) + " " + filt);
      const stic::Image r = stic::image_resize(im, e["w"], e["h"], filter_of(filt));
      EXPECT_TRUE(matches(r, e));
      ++n;
      bicubic += filt == "bicubic";
    }
  }
  EXPECT_GE(bicubic, 200);
  EXPECT_GE(n, 450);
}

TEST(ImageResize, SameSizeIsCopyAndBadSizesThrow) {
  const stic::Image im = load_rel("tests/fixtures/images/chelsea.png");
  const stic::Image same = stic::image_resize(im, im.width, im.height);
  EXPECT_EQ(same.rgb, im.rgb);
  EXPECT_THROW(stic::image_resize(im, 0, 10), stic::Error);
  EXPECT_THROW(stic::image_resize(stic::Image{}, 10, 10), stic::Error);
}

TEST(ImageCropPad, Geometry) {
  stic::Image im;
  im.width = 3;
  im.height = 2;
  for (int i = 0; i < 18; ++i) im.rgb.push_back(static_cast<uint8_t>(i));
  const stic::Image c = stic::image_crop(im, 1, 1, 2, 1);
  EXPECT_EQ(c.rgb, (std::vector<uint8_t>{12, 13, 14, 15, 16, 17}));
  EXPECT_THROW(stic::image_crop(im, 2, 0, 2, 1), stic::Error);
  const stic::Image p = stic::image_pad_to(im, 5, 4, 1, 2, {7, 8, 9});
  ASSERT_EQ(p.width, 5);
  ASSERT_EQ(p.height, 4);
  EXPECT_EQ(p.rgb[0], 7);
  EXPECT_EQ(p.rgb[2], 9);
  EXPECT_EQ(p.rgb[(2 * 5 + 1) * 3], 0);   // (1, 2) <- (0, 0)
  EXPECT_EQ(p.rgb[(3 * 5 + 3) * 3 + 2], 17);  // (3, 3) <- (2, 1)
  const stic::Image sq = stic::expand_to_square(im, {1, 2, 3});
  ASSERT_EQ(sq.width, 3);
  ASSERT_EQ(sq.height, 3);
  EXPECT_EQ(sq.rgb[0], 0);  // (3 - 2) // 2 = 0 rows above: image at the top
  EXPECT_EQ(sq.rgb[(2 * 3) * 3], 1);  // last row is fill
}

// ---- preprocessing ------------------------------------------------------------------------

TEST(ClipPreprocess, ResizeOutputSizes) {
  // int(336 * long / short) truncates: 640x427 -> 503x336.
  EXPECT_EQ(stic::shortest_edge_resize_size(427, 640, 336), std::make_pair(336, 503));
  EXPECT_EQ(stic::shortest_edge_resize_size(640, 424, 336), std::make_pair(507, 336));
  EXPECT_EQ(stic::shortest_edge_resize_size(300, 451, 20), std::make_pair(20, 30));
  EXPECT_EQ(stic::shortest_edge_resize_size(100, 100, 336), std::make_pair(336, 336));
  stic::ClipPreprocessConfig cfg;
  EXPECT_EQ(stic::mean_fill_color(cfg), (std::array<uint8_t, 3>{122, 116, 104}));
}

TEST(ClipPreprocess, NormalisationFormula) {
  // Every uint8 value, each channel: float32(v * (1/255.0)) then (x - mean) / std in float32.
  stic::Image im;
  im.width = 256;
  im.height = 1;
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < 3; ++c) im.rgb.push_back(static_cast<uint8_t>(v));
  stic::ClipPreprocessConfig cfg;
  std::vector<float> out(3 * 256);
  stic::normalize_to_chw(im, cfg, out.data());
  double max_err = 0;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const double ref = (v / 255.0 - cfg.mean[c]) / cfg.std[c];
      max_err = std::max(max_err, std::abs(ref - out[c * 256 + v]));
      const float x = static_cast<float>(v * (1.0 / 255.0));
      EXPECT_EQ(out[c * 256 + v], (x - cfg.mean[c]) / cfg.std[c]);
    }
  EXPECT_LT(max_err, 1e-6);
  EXPECT_NEAR(out[0], -0.48145466 / 0.26862954, 1e-6);
}

TEST(ClipPreprocess, CropPadAnyresEqualHfPipeline) {
  stic::ClipPreprocessConfig cfg;
  const auto pinpoints = stic::default_llava_pinpoints();
  int images = 0;
  for (const auto& [rel, e] : expected()["preprocess"].items()) {
    SCOPED_TRACE(rel);
    const stic::Image im = load_rel(rel);
    // plain CLIP
    EXPECT_TRUE(matches(stic::clip_resize_crop(im, cfg), e["crop"]["crops"][0]));
    stic::PixelBatch b = stic::preprocess_image(im, stic::AspectMode::Crop, cfg);
    EXPECT_EQ(b.n, 1);
    EXPECT_TRUE(matches_floats(b.data, e["crop"]["pixel_values_sha256"]));
    // pad (expand2square with the mean colour)
    const stic::Image sq = stic::expand_to_square(im, stic::mean_fill_color(cfg));
    EXPECT_TRUE(matches(stic::clip_resize_crop(sq, cfg), e["pad"]["crops"][0]));
    b = stic::preprocess_image(im, stic::AspectMode::Pad, cfg);
    EXPECT_EQ(b.n, 1);
    EXPECT_EQ(b.h, 336);
    EXPECT_EQ(b.orig_h, im.height);
    EXPECT_TRUE(matches_floats(b.data, e["pad"]["pixel_values_sha256"]));
    // anyres
    const json& a = e["anyres"];
    EXPECT_EQ(stic::select_best_resolution(im.height, im.width, pinpoints),
              std::make_pair(a["best_hw"][0].get<int>(), a["best_hw"][1].get<int>()));
    const auto best = stic::select_best_resolution(im.height, im.width, pinpoints);
    EXPECT_EQ(stic::anyres_resized_size(im.height, im.width, best.first, best.second),
              std::make_pair(a["resized_hw"][0].get<int>(), a["resized_hw"][1].get<int>()));
    int rows = 0, cols = 0;
    const auto crops = stic::anyres_crops(im, cfg, pinpoints, &rows, &cols);
    EXPECT_EQ(rows, a["grid"][0].get<int>());
    EXPECT_EQ(cols, a["grid"][1].get<int>());
    ASSERT_EQ(crops.size(), a["crops"].size());
    for (size_t i = 0; i < crops.size(); ++i)
      EXPECT_TRUE(matches(stic::clip_resize_crop(crops[i], cfg), a["crops"][i])) << "crop " << i;
    b = stic::preprocess_image(im, stic::AspectMode::Anyres, cfg, pinpoints);
    EXPECT_EQ(b.n, a["pixel_values_shape"][0].get<int>());
    EXPECT_EQ(b.n, 1 + rows * cols);
    EXPECT_EQ(b.c, 3);
    EXPECT_EQ(b.h, 336);
    EXPECT_EQ(b.w, 336);
    EXPECT_EQ(b.grid_rows, rows);
    EXPECT_EQ(b.grid_cols, cols);
    EXPECT_EQ(b.orig_h, im.height);
    EXPECT_EQ(b.orig_w, im.width);
    EXPECT_EQ(b.data.front(), a["sample"][0].get<float>());
    EXPECT_EQ(b.data.back(), a["sample"][1].get<float>());
    EXPECT_TRUE(matches_floats(b.data, a["pixel_values_sha256"]));
    // other crop sizes
    stic::ClipPreprocessConfig c224;
    c224.shortest_edge = 224;
    c224.crop_h = c224.crop_w = 224;
    EXPECT_TRUE(matches(stic::clip_resize_crop(im, c224), e["crop224"]["crops"][0]));
    c224.crop_h = 180;
    c224.crop_w = 200;
    EXPECT_TRUE(matches(stic::clip_resize_crop(im, c224), e["crop224_180x200"]["crops"][0]));
    stic::ClipPreprocessConfig c201;
    c201.shortest_edge = 201;
    c201.crop_h = 227;
    c201.crop_w = 240;
    EXPECT_TRUE(matches(stic::clip_resize_crop(im, c201), e["crop201_227x240"]["crops"][0]));
    ++images;
  }
  EXPECT_GE(images, 10);
}

TEST(AnyresSelect, HandDerivedCases) {
  const auto pp = stic::default_llava_pinpoints();  // (h, w): 336x672 672x336 672x672 ...
  // 640x427 (h=427, w=640). s = min(w_t/640, h_t/427); effective = min(int(640s)*int(427s),
  // 273280):
  //   (336,672): s=336/427      -> 503*336 = 169008
  //   (672,336): s=0.525        -> 336*224 =  75264
  //   (672,672): s=1.05         -> 672*448 > 273280 -> 273280  (waste 451584-273280)
  //   (1008,336): s=0.525       ->  75264;  (336,1008): s=336/427 -> 169008
  // -> (672,672); resized to ceil(427*1.05)=449 x 672, padded 111 rows above / 112 below.
  EXPECT_EQ(stic::select_best_resolution(427, 640, pp), std::make_pair(672, 672));
  EXPECT_EQ(stic::anyres_resized_size(427, 640, 672, 672), std::make_pair(449, 672));
  // 640x192: (336,672) s=1.05 -> 672*201 > 122880 -> 122880, waste 225792-122880 = 102912;
  // (672,672) and (336,1008) reach 122880 too but waste more; the rest reach 336*100.
  EXPECT_EQ(stic::select_best_resolution(192, 640, pp), std::make_pair(336, 672));
  // 424x640 portrait: (672,672) s=1.05 -> 445*672 > 271360 -> 271360; (672,336) and
  // (1008,336) s=336/424 -> 336*507 = 170352.
  EXPECT_EQ(stic::select_best_resolution(640, 424, pp), std::make_pair(672, 672));
  EXPECT_EQ(stic::anyres_resized_size(640, 424, 672, 672), std::make_pair(672, 446));
  // 451x300: (336,672) s=1.12 -> 505*336 > 135300 -> 135300 with the least waste (90492).
  EXPECT_EQ(stic::select_best_resolution(300, 451, pp), std::make_pair(336, 672));
  EXPECT_EQ(stic::anyres_resized_size(300, 451, 336, 672), std::make_pair(336, 506));
  // A small square reaches its full 100*100 on every pinpoint; 336x672 and 672x336 waste the
  // same, so list order decides: the first one wins.
  EXPECT_EQ(stic::select_best_resolution(100, 100, pp), std::make_pair(336, 672));
  std::vector<std::pair<int, int>> rev(pp.rbegin(), pp.rend());
  EXPECT_EQ(stic::select_best_resolution(100, 100, rev), std::make_pair(672, 336));
  // 1000x1000: only (672,672) keeps 672*672; the others reach 336*336.
  EXPECT_EQ(stic::select_best_resolution(1000, 1000, pp), std::make_pair(672, 672));
  EXPECT_THROW(stic::select_best_resolution(10, 10, {}), stic::Error);
}

TEST(AnyresSelect, SmallImageLayout) {
  // A 10x10 image: best (336, 672) -> resized to 336x336, padded 168 black columns each side,
  // grid 1x2; the base image comes first.
  stic::Image im;
  im.width = im.height = 10;
  im.rgb.assign(300, 200);
  stic::ClipPreprocessConfig cfg;
  int rows = 0, cols = 0;
  const auto crops = stic::anyres_crops(im, cfg, stic::default_llava_pinpoints(), &rows, &cols);
  EXPECT_EQ(rows, 1);
  EXPECT_EQ(cols, 2);
  ASSERT_EQ(crops.size(), 3u);
  EXPECT_EQ(crops[1].rgb[0], 0);                          // left padding of patch (0, 0)
  EXPECT_EQ(crops[1].rgb[(335 * 336 + 335) * 3], 200);    // image starts at column 168
  EXPECT_EQ(crops[2].rgb[(0 * 336 + 167) * 3], 200);      // image ends at column 503
  EXPECT_EQ(crops[2].rgb[(0 * 336 + 168) * 3], 0);
  const stic::PixelBatch b = stic::preprocess_image(im, stic::AspectMode::Anyres, cfg);
  EXPECT_EQ(b.n, 3);
  EXPECT_EQ(b.data.size(), 3u * 3 * 336 * 336);
}

// ---- corruptions --------------------------------------------------------------------------

TEST(ImageCorrupt, LowResolutionEqualsTorchvisionResize20) {
  for (const auto& [rel, e] : expected()["lowres"].items()) {
    SCOPED_TRACE(rel);
    EXPECT_TRUE(matches(stic::image_low_resolution(load_rel(rel), 20), e));
  }
}

TEST(ImageCorrupt, ColorJitterEqualsTorchvisionFormulas) {
  for (const auto& [rel, entries] : expected()["jitter"].items()) {
    const stic::Image im = load_rel(rel);
    for (const auto& e : entries) {
      SCOPED_TRACE(rel + " b=" + std::to_string(e["brightness"].get<double>()) +
                   " h=" + std::to_string(e["hue"].get<double>()));
      EXPECT_TRUE(matches(stic::image_color_jitter(im, e["brightness"].get<float>(),
                                                   e["hue"].get<float>()),
                          e));
    }
  }
}

TEST(ImageSave, PngRoundTrip) {
  const stic::Image im = load_rel("tests/fixtures/images/chelsea.png");
  const std::string p = ::testing::TempDir() + "stic_image_roundtrip.png";
  ASSERT_TRUE(stic::image_save_png(im, p));
  EXPECT_EQ(stic::image_load(p).rgb, im.rgb);
  std::remove(p.c_str());
}
