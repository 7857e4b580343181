// stic/image/preprocess.cpp — CLIP / LLaVA preprocessing and the STIC corruptions.
//
// Mirrors HF transformers' processors step by step (CLIPImageProcessor, LlavaImageProcessor with
// do_pad, LlavaNextImageProcessor) in two backends (ClipPreprocessConfig::backend):
//   Pil (transformers' PilBackend / v4 slow processors): Pillow resize; rescale then normalise
//     as numpy rounds them: float32(float64(v) * (1/255)), then (x - mean) / std in float32.
//   Torchvision (transformers' TorchvisionBackend / v4 ...Fast, on the CPU): ATen's uint8 resize
//     (image_resize_torchvision); centre crop pads floor((crop - size) / 2) before (PIL: ceil);
//     rescale fused into normalise: mean' = float32(mean) * 255, std' = float32(std) * 255 (float32
//     tensors), y = (float32(v) - mean') / std' (torchvision's normalize: sub then true div).
// The structure is the same in both: LLaVA's pad-to-square with the mean colour (int(x * 255))
// placed at ((s - w) // 2, (s - h) // 2); anyres resizes to the best pinpoint (fit inside, ceil),
// zero-pads with (d // 2, d - d // 2), cuts patches row-major and puts the original image resized
// to shortest_edge x shortest_edge first; every crop then goes through resize + centre crop.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stic/image/image.h"
#include "stic/util/error.h"

namespace stic {
namespace {

void check_image(const Image& im, const char* what) {
  if (im.width <= 0 || im.height <= 0 ||
      im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    fail(what, ": invalid image ", im.width, "x", im.height, " (", im.rgb.size(), " bytes)");
}

Image resize_with(const Image& im, int width, int height, ImageBackend backend) {
  return backend == ImageBackend::Torchvision ? image_resize_torchvision(im, width, height, Resample::Bicubic)
                                              : image_resize(im, width, height, Resample::Bicubic);
}

// TorchvisionBackend.center_crop: an axis smaller than the crop is zero-padded (crop - size) // 2
// before and (crop - size + 1) // 2 after; if that makes the crop size, done; else crop at
// int((h - crop_h) / 2.0), int((w - crop_w) / 2.0).
Image center_crop_torchvision(const Image& im, int crop_h, int crop_w) {
  const Image* src = &im;
  Image padded;
  if (crop_w > im.width || crop_h > im.height) {
    const int left = crop_w > im.width ? (crop_w - im.width) / 2 : 0;
    const int top = crop_h > im.height ? (crop_h - im.height) / 2 : 0;
    const int right = crop_w > im.width ? (crop_w - im.width + 1) / 2 : 0;
    const int bottom = crop_h > im.height ? (crop_h - im.height + 1) / 2 : 0;
    padded = image_pad_to(im, im.width + left + right, im.height + top + bottom, left, top, {0, 0, 0});
    if (padded.width == crop_w && padded.height == crop_h) return padded;
    src = &padded;
  }
  return image_crop(*src, (src->width - crop_w) / 2, (src->height - crop_h) / 2, crop_w, crop_h);
}

// HF center_crop: crop offsets (h - ch) // 2; when the image is smaller than the crop it is
// first zero-padded (offset ceil(diff / 2)) to max(size, crop) on each axis.
Image center_crop(const Image& im, int crop_h, int crop_w, ImageBackend backend) {
  if (crop_h <= 0 || crop_w <= 0) fail("center_crop: crop size must be positive");
  if (backend == ImageBackend::Torchvision) return center_crop_torchvision(im, crop_h, crop_w);
  const int h = im.height, w = im.width;
  auto floordiv2 = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  int top = floordiv2(h - crop_h), left = floordiv2(w - crop_w);
  if (top >= 0 && left >= 0 && top + crop_h <= h && left + crop_w <= w)
    return image_crop(im, left, top, crop_w, crop_h);
  const int nh = std::max(crop_h, h), nw = std::max(crop_w, w);
  const int top_pad = (nh - h + 1) / 2, left_pad = (nw - w + 1) / 2;  // ceil((n - o) / 2)
  Image padded = image_pad_to(im, nw, nh, left_pad, top_pad, {0, 0, 0});
  top += top_pad;
  left += left_pad;
  const int y0 = std::max(0, top), y1 = std::min(nh, top + crop_h);
  const int x0 = std::max(0, left), x1 = std::min(nw, left + crop_w);
  return image_crop(padded, x0, y0, x1 - x0, y1 - y0);
}

}  // namespace

ImageBackend parse_image_backend(const std::string& name) {
  if (name == "pil") return ImageBackend::Pil;
  if (name == "torchvision") return ImageBackend::Torchvision;
  fail("--image-backend '", name, "' is not valid (expected pil or torchvision)");
}

const char* image_backend_name(ImageBackend b) {
  return b == ImageBackend::Torchvision ? "torchvision" : "pil";
}

Image image_crop(const Image& im, int left, int top, int width, int height) {
  check_image(im, "image_crop");
  if (width <= 0 || height <= 0 || left < 0 || top < 0 || left + width > im.width ||
      top + height > im.height)
    fail("image_crop: box (", left, ",", top, ") ", width, "x", height, " is outside the ",
         im.width, "x", im.height, " image");
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    std::memcpy(&out.rgb[static_cast<size_t>(y) * width * 3],
                &im.rgb[(static_cast<size_t>(top + y) * im.width + left) * 3],
                static_cast<size_t>(width) * 3);
  return out;
}

Image image_pad_to(const Image& im, int width, int height, int left, int top,
                   std::array<uint8_t, 3> fill) {
  check_image(im, "image_pad_to");
  if (width <= 0 || height <= 0) fail("image_pad_to: size must be positive");
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < out.rgb.size(); i += 3) {
    out.rgb[i] = fill[0];
    out.rgb[i + 1] = fill[1];
    out.rgb[i + 2] = fill[2];
  }
  const int x0 = std::max(0, left), x1 = std::min(width, left + im.width);
  const int y0 = std::max(0, top), y1 = std::min(height, top + im.height);
  if (x1 <= x0) return out;
  for (int y = y0; y < y1; ++y)
    std::memcpy(&out.rgb[(static_cast<size_t>(y) * width + x0) * 3],
                &im.rgb[(static_cast<size_t>(y - top) * im.width + (x0 - left)) * 3],
                static_cast<size_t>(x1 - x0) * 3);
  return out;
}

std::pair<int, int> shortest_edge_resize_size(int h, int w, int size) {
  if (h <= 0 || w <= 0 || size <= 0) fail("shortest_edge_resize_size: sizes must be positive");
  const int s = std::min(h, w), l = std::max(h, w);
  // Python: int(size * long / short) — the product is exact, one division in double.
  const int new_long = static_cast<int>(static_cast<double>(static_cast<long long>(size) * l) / s);
  return w <= h ? std::make_pair(new_long, size) : std::make_pair(size, new_long);
}

std::pair<int, int> select_best_resolution(int orig_h, int orig_w,
                                           const std::vector<std::pair<int, int>>& pinpoints) {
  if (pinpoints.empty()) fail("select_best_resolution: no grid pinpoints given");
  if (orig_h <= 0 || orig_w <= 0) fail("select_best_resolution: invalid image size");
  std::pair<int, int> best{0, 0};
  long long max_effective = 0;
  double min_wasted = INFINITY;
  bool found = false;
  for (const auto& [h, w] : pinpoints) {
    const double scale = std::min(static_cast<double>(w) / orig_w, static_cast<double>(h) / orig_h);
    const long long dw = static_cast<long long>(orig_w * scale);
    const long long dh = static_cast<long long>(orig_h * scale);
    const long long effective =
        std::min(dw * dh, static_cast<long long>(orig_w) * static_cast<long long>(orig_h));
    const long long wasted = static_cast<long long>(w) * h - effective;
    if (effective > max_effective ||
        (effective == max_effective && static_cast<double>(wasted) < min_wasted)) {
      max_effective = effective;
      min_wasted = static_cast<double>(wasted);
      best = {h, w};
      found = true;
    }
  }
  if (!found) fail("select_best_resolution: no pinpoint fits a ", orig_w, "x", orig_h, " image");
  return best;
}

std::pair<int, int> anyres_resized_size(int orig_h, int orig_w, int target_h, int target_w) {
  const double scale_w = static_cast<double>(target_w) / orig_w;
  const double scale_h = static_cast<double>(target_h) / orig_h;
  if (scale_w < scale_h) {
    const int nh = std::min(static_cast<int>(std::ceil(orig_h * scale_w)), target_h);
    return {nh, target_w};
  }
  const int nw = std::min(static_cast<int>(std::ceil(orig_w * scale_h)), target_w);
  return {target_h, nw};
}

std::array<uint8_t, 3> mean_fill_color(const ClipPreprocessConfig& cfg) {
  // HF: tuple(int(x * 255) for x in image_mean), with the means as Python floats (doubles).
  // The config stores floats; the CLIP means are exact in decimal, so go through the shortest
  // decimal repr of the float to recover the double Python would hold.
  std::array<uint8_t, 3> c{};
  for (int i = 0; i < 3; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(cfg.mean[i]));
    double d = std::strtod(buf, nullptr);
    // Prefer the shortest decimal that round-trips to the same float.
    for (int prec = 1; prec <= 9; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(cfg.mean[i]));
      const double cand = std::strtod(buf, nullptr);
      if (static_cast<float>(cand) == cfg.mean[i]) {
        d = cand;
        break;
      }
    }
    const double v = d * 255.0;
    c[i] = static_cast<uint8_t>(v <= 0 ? 0 : (v >= 255 ? 255 : static_cast<int>(v)));
  }
  return c;
}

Image expand_to_square(const Image& im, std::array<uint8_t, 3> fill) {
  check_image(im, "expand_to_square");
  if (im.width == im.height) return im;
  const int s = std::max(im.width, im.height);
  return image_pad_to(im, s, s, (s - im.width) / 2, (s - im.height) / 2, fill);
}

Image clip_resize_crop(const Image& im, const ClipPreprocessConfig& cfg) {
  check_image(im, "clip_preprocess");
  const auto [nh, nw] = shortest_edge_resize_size(im.height, im.width, cfg.shortest_edge);
  Image r = resize_with(im, nw, nh, cfg.backend);
  if (!cfg.do_center_crop) return r;
  return center_crop(r, cfg.crop_h, cfg.crop_w, cfg.backend);
}

void normalize_to_chw(const Image& im, const ClipPreprocessConfig& cfg, float* out) {
  check_image(im, "normalize_to_chw");
  const size_t hw = static_cast<size_t>(im.width) * im.height;
  const double scale = 1.0 / 255.0;
  // torchvision: mean and std as float32 tensors times the Python float 1 / (1/255), which the
  // float32 multiply takes as 255.0f
  const float fused = static_cast<float>(1.0 / scale);
  for (int c = 0; c < 3; ++c) {
    // Per-value table: the same arithmetic numpy / torch does, element by element.
    float lut[256];
    if (cfg.backend == ImageBackend::Torchvision) {
      const float m = cfg.mean[c] * fused, s = cfg.std[c] * fused;
      for (int v = 0; v < 256; ++v) lut[v] = (static_cast<float>(v) - m) / s;
    } else {
      for (int v = 0; v < 256; ++v) {
        const float x = static_cast<float>(static_cast<double>(v) * scale);
        lut[v] = (x - cfg.mean[c]) / cfg.std[c];
      }
    }
    float* o = out + c * hw;
    for (size_t i = 0; i < hw; ++i) o[i] = lut[im.rgb[i * 3 + c]];
  }
}

PixelBatch clip_preprocess(const Image& im, const ClipPreprocessConfig& cfg) {
  Image r = clip_resize_crop(im, cfg);
  PixelBatch b;
  b.n = 1;
  b.h = r.height;
  b.w = r.width;
  b.orig_h = im.height;
  b.orig_w = im.width;
  b.data.resize(static_cast<size_t>(3) * b.h * b.w);
  normalize_to_chw(r, cfg, b.data.data());
  return b;
}

std::vector<std::pair<int, int>> default_llava_pinpoints() {
  return {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
}

std::vector<Image> anyres_crops(const Image& im, const ClipPreprocessConfig& cfg,
                                const std::vector<std::pair<int, int>>& pinpoints_hw,
                                int* grid_rows, int* grid_cols) {
  check_image(im, "anyres");
  const auto [th, tw] = select_best_resolution(im.height, im.width, pinpoints_hw);
  const auto [rh, rw] = anyres_resized_size(im.height, im.width, th, tw);
  Image resized = resize_with(im, rw, rh, cfg.backend);
  // np.pad with (d // 2, d - d // 2) on each axis.
  Image padded = image_pad_to(resized, tw, th, (tw - rw) / 2, (th - rh) / 2, {0, 0, 0});
  // HF: patch size = crop_size height; patches of patch x patch cut row-major with range(0, H,
  // p); the base image is squashed to (size, size) with size = shortest_edge.
  const int p = cfg.crop_h;
  std::vector<Image> crops;
  crops.push_back(resize_with(im, cfg.shortest_edge, cfg.shortest_edge, cfg.backend));
  int rows = 0, cols = 0;
  for (int y = 0; y < th; y += p) {
    ++rows;
    cols = 0;
    for (int x = 0; x < tw; x += p) {
      ++cols;
      const int ch = std::min(p, th - y), cw = std::min(p, tw - x);
      crops.push_back(image_crop(padded, x, y, cw, ch));
    }
  }
  if (grid_rows) *grid_rows = rows;
  if (grid_cols) *grid_cols = cols;
  return crops;
}

PixelBatch preprocess_image(const Image& im, AspectMode mode, const ClipPreprocessConfig& cfg,
                            const std::vector<std::pair<int, int>>& pinpoints_hw) {
  check_image(im, "preprocess_image");
  // the intermediate images the processors make (LLaVA's square padding; the shortest-edge resize)
  // stay within the decoder's pixel limit: a 1 x 60000 image would otherwise pad to 3.6 G pixels
  const int64_t w = im.width, h = im.height, lim = image_max_pixels();
  const int64_t lo = std::min(w, h), hi = std::max(w, h), edge = cfg.shortest_edge;
  if (mode == AspectMode::Pad && hi * hi > lim)
    fail("image of ", w, "x", h, ": padding it to a ", hi, "x", hi, " square exceeds the pixel limit of ", lim,
         " (STIC_MAX_IMAGE_PIXELS)");
  if (mode != AspectMode::Pad && edge > 0 && lo > 0 && edge * ((hi * edge + lo - 1) / lo) > lim)
    fail("image of ", w, "x", h, ": resizing its shortest edge to ", edge, " exceeds the pixel limit of ", lim,
         " (aspect ratio ", hi / lo, ":1; STIC_MAX_IMAGE_PIXELS)");
  switch (mode) {
    case AspectMode::Crop:
      return clip_preprocess(im, cfg);
    case AspectMode::Pad: {
      PixelBatch b = clip_preprocess(expand_to_square(im, mean_fill_color(cfg)), cfg);
      b.orig_h = im.height;
      b.orig_w = im.width;
      return b;
    }
    case AspectMode::Anyres: {
      PixelBatch b;
      const std::vector<Image> crops = anyres_crops(
          im, cfg, pinpoints_hw.empty() ? default_llava_pinpoints() : pinpoints_hw,
          &b.grid_rows, &b.grid_cols);
      std::vector<Image> finals;
      finals.reserve(crops.size());
      for (const Image& c : crops) finals.push_back(clip_resize_crop(c, cfg));
      b.n = static_cast<int>(finals.size());
      b.h = finals[0].height;
      b.w = finals[0].width;
      for (const Image& f : finals)
        if (f.height != b.h || f.width != b.w)
          fail("anyres: crops of different sizes (", f.width, "x", f.height, " vs ", b.w, "x",
               b.h, "); check shortest_edge and crop size");
      const size_t per = static_cast<size_t>(3) * b.h * b.w;
      b.data.resize(per * b.n);
      for (int i = 0; i < b.n; ++i) normalize_to_chw(finals[i], cfg, b.data.data() + per * i);
      b.orig_h = im.height;
      b.orig_w = im.width;
      return b;
    }
  }
  fail("preprocess_image: unknown aspect mode");
}

// ---- STIC corruptions ------------------------------------------------------------------------

Image image_low_resolution(const Image& im, int short_side) {
  check_image(im, "image_low_resolution");
  const auto [h, w] = shortest_edge_resize_size(im.height, im.width, short_side);
  return image_resize(im, w, h, Resample::Bilinear);
}

namespace {

// torchvision's _rgb2hsv / _hsv2rgb on floats in [0, 1] (float32 arithmetic).
void rgb_to_hsv(float r, float g, float b, float& h, float& s, float& v) {
  const float maxc = std::max(r, std::max(g, b));
  const float minc = std::min(r, std::min(g, b));
  const bool eqc = maxc == minc;
  const float cr = maxc - minc;
  const float ones = 1.0f;
  s = cr / (eqc ? ones : maxc);
  const float cr_divisor = eqc ? ones : cr;
  const float rc = (maxc - r) / cr_divisor;
  const float gc = (maxc - g) / cr_divisor;
  const float bc = (maxc - b) / cr_divisor;
  const float hr = (maxc == r) ? (bc - gc) : 0.0f;
  const float hg = (maxc == g && maxc != r) ? (2.0f + rc - bc) : 0.0f;
  const float hb = (maxc != g && maxc != r) ? (4.0f + gc - rc) : 0.0f;
  float hh = hr + hg + hb;
  hh = hh / 6.0f + 1.0f;
  h = std::fmod(hh, 1.0f);  // torch.fmod; hh > 0 here
  v = maxc;
}

void hsv_to_rgb(float h, float s, float v, float& r, float& g, float& b) {
  const float i = std::floor(h * 6.0f);
  const float f = h * 6.0f - i;
  const int ii = static_cast<int>(i) % 6;
  const float p = std::min(std::max(v * (1.0f - s), 0.0f), 1.0f);
  const float q = std::min(std::max(v * (1.0f - s * f), 0.0f), 1.0f);
  const float t = std::min(std::max(v * (1.0f - s * (1.0f - f)), 0.0f), 1.0f);
  switch (ii) {
    case 0: r = v; g = t; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = t; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = t; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
  }
}

}  // namespace

Image image_color_jitter(const Image& im, float brightness_factor, float hue_shift) {
  check_image(im, "image_color_jitter");
  if (!(brightness_factor >= 0.0f)) fail("image_color_jitter: brightness factor must be >= 0");
  if (!(hue_shift >= -0.5f && hue_shift <= 0.5f))
    fail("image_color_jitter: hue shift must lie in [-0.5, 0.5], got ", hue_shift);
  Image out = im;
  // adjust_brightness: _blend(img, zeros, f) = (f * img + (1 - f) * 0).clamp(0, 255) -> uint8.
  for (uint8_t& v : out.rgb) {
    float x = brightness_factor * static_cast<float>(v) + (1.0f - brightness_factor) * 0.0f;
    x = std::min(std::max(x, 0.0f), 255.0f);
    v = static_cast<uint8_t>(x);
  }
  if (hue_shift == 0.0f) return out;
  // adjust_hue: uint8 -> float / 255, HSV, h = (h + shift) % 1.0, RGB, back to uint8.
  for (size_t i = 0; i < out.rgb.size(); i += 3) {
    float h, s, v;
    rgb_to_hsv(out.rgb[i] / 255.0f, out.rgb[i + 1] / 255.0f, out.rgb[i + 2] / 255.0f, h, s, v);
    h = h + hue_shift;
    h = h - std::floor(h);  // Python-style % 1.0 (result in [0, 1))
    if (h >= 1.0f) h = 0.0f;
    float r, g, b;
    hsv_to_rgb(h, s, v, r, g, b);
    // convert_image_dtype(float -> uint8): multiply by 255 + 1 - 1e-3, truncate.
    const float k = 255.999f;
    out.rgb[i] = static_cast<uint8_t>(r * k);
    out.rgb[i + 1] = static_cast<uint8_t>(g * k);
    out.rgb[i + 2] = static_cast<uint8_t>(b * k);
  }
  return out;
}

std::string ImageTransform::name() const {
  switch (kind) {
    case Kind::LowRes: return "lowres";
    case Kind::Jitter: return "jitter";
    default: return "none";
  }
}

std::string ImageTransform::key() const {
  char b[96];
  switch (kind) {
    case Kind::LowRes: std::snprintf(b, sizeof b, "lowres:%d", short_side); return b;
    case Kind::Jitter: std::snprintf(b, sizeof b, "jitter:%.9g:%.9g", brightness, hue); return b;
    default: return "";
  }
}

Image ImageTransform::apply(const Image& im) const {
  switch (kind) {
    case Kind::LowRes: return image_low_resolution(im, short_side);
    case Kind::Jitter: return image_color_jitter(im, brightness, hue);
    default: return im;
  }
}

}  // namespace stic
