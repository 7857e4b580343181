// stic/image/resample.cpp — resizing that reproduces Pillow's Image.resize bit for bit.
//
// Pillow (src/libImaging/Resample.c) resizes 8-bit images with a separable convolution:
// a horizontal pass into a uint8 intermediate, then a vertical pass. For each output pixel the
// filter (bicubic a = -0.5, support 2; bilinear, support 1) is stretched by the downscale
// factor, evaluated in double at the source pixel centres, normalised to sum 1, and converted
// to fixed point with 22 fractional bits (32 - 8 - 2). Accumulation is in int32 starting at
// one half, the result is shifted back and clipped to [0, 255]. A pass whose size does not
// change is skipped. NEAREST goes through Pillow's affine scaler instead (Geometry.c). The
// expressions below keep Pillow's evaluation order so the doubles round identically.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "stic/image/image.h"
#include "stic/util/error.h"

// Keep a*b+c as two roundings (no FMA contraction) so coefficients match Pillow's build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace stic {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_kernel(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinear_kernel(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Per output index: the first source index, the number of taps, and ksize fixed-point weights.
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * ksize
};

Taps compute_taps(int in_size, int out_size, double (*kernel)(double), double kernel_support) {
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);  // Pillow's float box
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kernel_support * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int lo = static_cast<int>(center - support + 0.5);  // truncation toward zero, as in C
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      const double v = kernel((x + lo - center + 0.5) * ss);
      w[x] = v;
      total += v;
    }
    int32_t* k = &t.weights[static_cast<size_t>(xx) * t.ksize];
    for (int x = 0; x < n; ++x) {
      double v = w[x];
      if (total != 0.0) v /= total;
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[xx] = lo;
    t.count[xx] = n;
  }
  return t;
}

inline uint8_t clip_fixed(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup index
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over rows [row0, row0 + rows) of `src` (width sw) into dst (width dw).
void horizontal_pass(const uint8_t* src, int sw, int row0, int rows, uint8_t* dst, int dw,
                     const Taps& t) {
  (void)sw;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src + static_cast<size_t>(row0 + y) * sw * 3;
    uint8_t* out = dst + static_cast<size_t>(y) * dw * 3;
    for (int xx = 0; xx < dw; ++xx) {
      const int32_t* k = &t.weights[static_cast<size_t>(xx) * t.ksize];
      const uint8_t* p = in + static_cast<size_t>(t.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < t.count[xx]; ++x) {
        s0 += p[x * 3 + 0] * k[x];
        s1 += p[x * 3 + 1] * k[x];
        s2 += p[x * 3 + 2] * k[x];
      }
      out[xx * 3 + 0] = clip_fixed(s0);
      out[xx * 3 + 1] = clip_fixed(s1);
      out[xx * 3 + 2] = clip_fixed(s2);
    }
  }
}

// Vertical pass: src has width w; taps index rows of src shifted by -row_offset.
void vertical_pass(const uint8_t* src, int w, int row_offset, uint8_t* dst, int dh,
                   const Taps& t) {
  // Row by row accumulation (cache friendly); integer sums are order independent.
  const size_t stride = static_cast<size_t>(w) * 3;
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < dh; ++yy) {
    const int32_t* k = &t.weights[static_cast<size_t>(yy) * t.ksize];
    const uint8_t* base = src + static_cast<size_t>(t.first[yy] - row_offset) * stride;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < t.count[yy]; ++y) {
      const uint8_t* row = base + static_cast<size_t>(y) * stride;
      const int32_t ky = k[y];
      for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
    }
    uint8_t* out = dst + static_cast<size_t>(yy) * stride;
    for (size_t i = 0; i < stride; ++i) out[i] = clip_fixed(acc[i]);
  }
}

Image resize_convolution(const Image& im, int width, int height, double (*kernel)(double),
                         double support) {
  const bool need_h = width != im.width;
  const bool need_v = height != im.height;
  Image cur;
  const Image* src = &im;
  Taps vt = compute_taps(im.height, height, kernel, support);
  int row_offset = 0;
  if (need_h) {
    // Only the source rows the vertical pass reads are resampled horizontally (same values).
    const int first = vt.first[0];
    const int last = vt.first[height - 1] + vt.count[height - 1];
    Taps ht = compute_taps(im.width, width, kernel, support);
    cur.width = width;
    cur.height = last - first;
    cur.rgb.resize(static_cast<size_t>(cur.width) * cur.height * 3);
    horizontal_pass(im.rgb.data(), im.width, first, cur.height, cur.rgb.data(), width, ht);
    src = &cur;
    row_offset = first;
  }
  if (!need_v) {
    if (src == &im) return im;  // nothing to do: Pillow copies
    return cur;                 // horizontal only (all rows were kept: first = 0)
  }
  Image out;
  out.width = src->width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(out.width) * height * 3);
  vertical_pass(src->rgb.data(), src->width, row_offset, out.rgb.data(), height, vt);
  return out;
}

Image resize_nearest(const Image& im, int width, int height) {
  // Pillow's ImagingScaleAffine: positions accumulate in double from half a step.
  const double ax = static_cast<double>(static_cast<float>(im.width)) / width;
  const double ay = static_cast<double>(static_cast<float>(im.height)) / height;
  std::vector<int> xs(width);
  double xo = 0.0 + ax * 0.5;
  for (int x = 0; x < width; ++x) {
    int xi = xo < 0.0 ? -1 : static_cast<int>(xo);
    xs[x] = std::min(std::max(xi, 0), im.width - 1);
    xo += ax;
  }
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  double yo = 0.0 + ay * 0.5;
  for (int y = 0; y < height; ++y) {
    int yi = yo < 0.0 ? -1 : static_cast<int>(yo);
    yi = std::min(std::max(yi, 0), im.height - 1);
    const uint8_t* in = &im.rgb[static_cast<size_t>(yi) * im.width * 3];
    uint8_t* o = &out.rgb[static_cast<size_t>(y) * width * 3];
    for (int x = 0; x < width; ++x) {
      o[x * 3 + 0] = in[xs[x] * 3 + 0];
      o[x * 3 + 1] = in[xs[x] * 3 + 1];
      o[x * 3 + 2] = in[xs[x] * 3 + 2];
    }
    yo += ay;
  }
  return out;
}

// ---- torchvision / ATen: the uint8 antialiased path -----------------------------------------
//
// torchvision.transforms.v2.functional.resize(uint8 CHW tensor, BICUBIC|BILINEAR, antialias=True)
// on the CPU runs ATen's native uint8 kernel (UpSampleKernel.cpp: upsample_avx_bilinear_bicubic_uint8
// on x86, separable_upsample_generic_Nd_kernel_impl elsewhere; both the same integer arithmetic).
// It is Pillow-SIMD's scheme, which differs from Pillow's Resample.c in three ways:
//   * the weights are int16 with p fractional bits chosen per pass from its largest normalised
//     weight w_max: p is the first of 0..21 with (int)(0.5 + w_max * 2^(p+1)) >= 2^15, else 22
//     (so w_max * 2^p fits int16; Pillow: always 22 bits in int32 weights);
//   * the cubic filter's outer lobe is evaluated as ((a*x - 5a)*x + 8a)*x - 4a (Pillow:
//     (((x - 5)*x + 8)*x - 4)*a) — a last-bit difference in double at most;
//   * the tap count of one output pixel is clamped to the kernel size.
// Everything else is shared: scale = in/out, support = (filter support) * max(scale, 1), window
// [max(int(center - support + 0.5), 0), min(int(center + support + 0.5), in)), taps
// f((j + xmin - center + 0.5) / max(scale, 1)) normalised to sum 1, rounding to int as
// (int)(v * 2^p +- 0.5), accumulation from 2^(p-1), arithmetic shift by p, clamp to [0, 255];
// horizontal pass first into a uint8 image, then the vertical pass; a pass whose size does not
// change is skipped. Since weights have fewer bits, about 0.1% of pixels land one level away
// from Pillow's.

double aten_cubic_filter(double x) {
  const double a = -0.5;  // Keys; ATen uses -0.5 with antialias (PIL compatibility)
  x = std::abs(x);
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

double aten_linear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

struct TapsI16 {
  int ksize = 0;
  unsigned precision = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * ksize, int16 values
};

TapsI16 compute_taps_aten(int in_size, int out_size, double (*filter)(double), int interp_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double support = scale >= 1.0 ? (interp_size * 0.5) * scale : interp_size * 0.5;
  TapsI16 t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  std::vector<double> w(static_cast<size_t>(out_size) * t.ksize, 0.0);
  double wt_max = 0.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t{0});
    int64_t xsize = std::min(static_cast<int64_t>(center + support + 0.5), int64_t{in_size}) - xmin;
    xsize = std::min(std::max(xsize, int64_t{0}), int64_t{t.ksize});
    double* k = &w[static_cast<size_t>(i) * t.ksize];
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      const double v = filter((static_cast<double>(j + xmin) - center + 0.5) * invscale);
      k[j] = v;
      total += v;
    }
    if (total != 0.0)
      for (int64_t j = 0; j < xsize; ++j) {
        k[j] /= total;
        wt_max = std::max(wt_max, k[j]);
      }
    t.first[i] = static_cast<int>(xmin);
    t.count[i] = static_cast<int>(xsize);
  }
  unsigned p = 0;
  for (; p < 22; ++p)
    if (static_cast<int>(0.5 + wt_max * (1 << (p + 1))) >= (1 << 15)) break;
  t.precision = p;
  t.weights.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const double v = w[i] * (1 << p);
    t.weights[i] = static_cast<int16_t>(v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v));
  }
  return t;
}

inline uint8_t clip_shift(int32_t acc, unsigned p) {
  const int32_t v = acc >> p;  // arithmetic shift (AVX2: _mm256_srai_epi32), then saturating packs
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

Image resize_aten_u8(const Image& im, int width, int height, double (*filter)(double), int interp_size) {
  Image cur = im;
  if (width != im.width) {
    const TapsI16 t = compute_taps_aten(im.width, width, filter, interp_size);
    Image out;
    out.width = width;
    out.height = im.height;
    out.rgb.resize(static_cast<size_t>(width) * im.height * 3);
    for (int y = 0; y < im.height; ++y) {
      const uint8_t* in = &im.rgb[static_cast<size_t>(y) * im.width * 3];
      uint8_t* o = &out.rgb[static_cast<size_t>(y) * width * 3];
      for (int xx = 0; xx < width; ++xx) {
        const int32_t* k = &t.weights[static_cast<size_t>(xx) * t.ksize];
        const uint8_t* px = in + static_cast<size_t>(t.first[xx]) * 3;
        int32_t s0 = 1 << (t.precision - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < t.count[xx]; ++x) {
          s0 += px[x * 3 + 0] * k[x];
          s1 += px[x * 3 + 1] * k[x];
          s2 += px[x * 3 + 2] * k[x];
        }
        o[xx * 3 + 0] = clip_shift(s0, t.precision);
        o[xx * 3 + 1] = clip_shift(s1, t.precision);
        o[xx * 3 + 2] = clip_shift(s2, t.precision);
      }
    }
    cur = std::move(out);
  }
  if (height != cur.height) {
    const TapsI16 t = compute_taps_aten(cur.height, height, filter, interp_size);
    Image out;
    out.width = cur.width;
    out.height = height;
    const size_t stride = static_cast<size_t>(cur.width) * 3;
    out.rgb.resize(stride * height);
    std::vector<int32_t> acc(stride);
    for (int yy = 0; yy < height; ++yy) {
      const int32_t* k = &t.weights[static_cast<size_t>(yy) * t.ksize];
      std::fill(acc.begin(), acc.end(), 1 << (t.precision - 1));
      for (int y = 0; y < t.count[yy]; ++y) {
        const uint8_t* row = &cur.rgb[static_cast<size_t>(t.first[yy] + y) * stride];
        const int32_t ky = k[y];
        for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
      }
      uint8_t* o = &out.rgb[static_cast<size_t>(yy) * stride];
      for (size_t i = 0; i < stride; ++i) o[i] = clip_shift(acc[i], t.precision);
    }
    cur = std::move(out);
  }
  return cur;
}

}  // namespace

Image image_resize(const Image& im, int width, int height, Resample r) {
  if (width <= 0 || height <= 0)
    fail("image_resize: target size must be positive, got ", width, "x", height);
  if (im.width <= 0 || im.height <= 0 ||
      im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    fail("image_resize: invalid source image ", im.width, "x", im.height);
  if (width == im.width && height == im.height) return im;
  switch (r) {
    case Resample::Nearest:
      return resize_nearest(im, width, height);
    case Resample::Bilinear:
      return resize_convolution(im, width, height, bilinear_kernel, 1.0);
    case Resample::Bicubic:
      return resize_convolution(im, width, height, bicubic_kernel, 2.0);
  }
  fail("image_resize: unknown resample filter");
}

}  // namespace stic

namespace stic {

Image image_resize_torchvision(const Image& im, int width, int height, Resample r) {
  if (width <= 0 || height <= 0)
    fail("image_resize_torchvision: target size must be positive, got ", width, "x", height);
  if (im.width <= 0 || im.height <= 0 ||
      im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    fail("image_resize_torchvision: invalid source image ", im.width, "x", im.height);
  if (width == im.width && height == im.height) return im;
  switch (r) {
    case Resample::Bilinear:
      return resize_aten_u8(im, width, height, aten_linear_filter, 2);
    case Resample::Bicubic:
      return resize_aten_u8(im, width, height, aten_cubic_filter, 4);
    case Resample::Nearest:
      break;
  }
  fail("image_resize_torchvision: only bilinear and bicubic (antialiased) are implemented");
}

}  // namespace stic
