// stic/image/image.h — images: decode, PIL-exact resampling, CLIP preprocessing, corruptions.
//
// Everything here is torch-free and works on 8-bit RGB images (HWC, row-major). The numerics
// follow the Python stack that the models were trained with, so that pixel values equal HF's:
//   * decode          = PIL's `Image.open(p).convert("RGB")` (JPEG through libjpeg-turbo with the
//                       same decoder settings PIL uses: ISLOW DCT, fancy upsampling; PNG through
//                       stb_image; grey replicated, alpha dropped, palettes expanded, CMYK via
//                       PIL's cmyk->rgb formula). EXIF orientation is NOT applied (PIL's open()
//                       doesn't either).
//   * image_resize    = Pillow's `Image.resize((w, h), BICUBIC|BILINEAR)` (Resample.c: separable
//                       convolution, fixed-point coefficients), bit-exact.
//   * clip_preprocess / preprocess_image = HF transformers' image processors, float32 bit-exact,
//                       in either backend (ImageBackend below):
//                       - Pil: the PIL/numpy processors (transformers 4's CLIPImageProcessor /
//                         LlavaImageProcessor (do_pad) / LlavaNextImageProcessor, transformers 5's
//                         ...ImageProcessorPil);
//                       - Torchvision: the torchvision processors (transformers 5's defaults,
//                         transformers 4's ...ImageProcessorFast), on the CPU: uint8 resize by
//                         image_resize_torchvision, torchvision's centre crop / pad, and the fused
//                         float32 rescale + normalise (x - 255 * mean) / (255 * std).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stic {

// An 8-bit RGB image, HWC, row-major: pixel (x, y) channel c is rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes a JPEG or PNG file (BMP/GIF also go through stb_image, unverified against PIL).
// Throws stic::Error naming the path and the decoder's reason on a missing, empty, truncated or
// corrupt file.
Image image_load(const std::string& path);
// The same from memory (e.g. base64 images of MMBench TSVs); `name_for_errors` goes in messages.
// Limits, checked before decoding: regular files only (not a directory, device or pipe), at most
// image_max_file_bytes() bytes (512 MiB; env STIC_MAX_IMAGE_BYTES), and at most
// image_max_pixels() pixels as the header claims them (PIL's decompression-bomb limit,
// 2 x 89,478,485; env STIC_MAX_IMAGE_PIXELS).
Image image_decode(const uint8_t* data, size_t size, const std::string& name_for_errors);
int64_t image_max_pixels();
int64_t image_max_file_bytes();

enum class Resample { Nearest, Bilinear, Bicubic };
// Pillow's Image.resize((width, height), resample) on RGB8. Same size -> copy.
Image image_resize(const Image& im, int width, int height, Resample r = Resample::Bicubic);
// torchvision.transforms.v2.functional.resize(t, (height, width), BICUBIC|BILINEAR,
// antialias=True) of a uint8 CHW tensor on the CPU (ATen's integer Pillow-SIMD kernel: int16
// weights at a per-pass precision), bit-exact. Same size -> copy; Nearest is not supported.
Image image_resize_torchvision(const Image& im, int width, int height, Resample r = Resample::Bicubic);
// Pixels [left, left+width) x [top, top+height); must lie inside the image (throws otherwise).
Image image_crop(const Image& im, int left, int top, int width, int height);
// A width x height canvas of `fill` with `im` pasted at (left, top); parts outside are clipped.
Image image_pad_to(const Image& im, int width, int height, int left, int top,
                   std::array<uint8_t, 3> fill);
// Writes a PNG (for debugging and reports). Returns false on failure.
bool image_save_png(const Image& im, const std::string& path);

// Whose preprocessing is reproduced (stic --image-backend).
enum class ImageBackend {
  Pil,         // PIL/numpy: Pillow's resize, float64 rescale then float32 normalise
  Torchvision  // torchvision: ATen's uint8 resize, fused float32 rescale + normalise
};
ImageBackend parse_image_backend(const std::string& name);  // pil | torchvision; throws otherwise
const char* image_backend_name(ImageBackend b);             // "pil" | "torchvision"

struct ClipPreprocessConfig {
  int shortest_edge = 336;
  int crop_h = 336, crop_w = 336;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
  bool do_center_crop = true;
  ImageBackend backend = ImageBackend::Pil;
};

enum class AspectMode {
  Crop,   // plain CLIP: resize shortest edge + centre crop
  Pad,    // LLaVA-1.5 expand2square: pad to a square with the mean colour, then CLIP
  Anyres  // LLaVA-1.6: base image + grid of crops at the best pinpoint resolution
};

// n crops, NCHW float32 — the layout of HF's pixel_values (for anyres: the base image first,
// then the grid patches row-major). grid_rows/cols: the anyres grid (1x1 otherwise);
// orig_h/orig_w: the decoded image's size (HF's image_sizes).
struct PixelBatch {
  int n = 0, c = 3, h = 0, w = 0;
  std::vector<float> data;
  int grid_rows = 1, grid_cols = 1;
  int orig_h = 0, orig_w = 0;
};

// HF's select_best_resolution: the pinpoint (h, w) that maximises the effective resolution
// min(int(w0*s) * int(h0*s), w0*h0) with s = min(w/w0, h/h0), ties broken by the smaller
// wasted area w*h - effective, then by list order. Returns (h, w).
// Note: HF transformers reads `image_grid_pinpoints` entries as [h, w]; the original LLaVA code
// reads them as [w, h]. Pass them in the order your reference uses.
std::pair<int, int> select_best_resolution(int orig_h, int orig_w,
                                           const std::vector<std::pair<int, int>>& pinpoints_hw);

// The (h, w) an image of orig_h x orig_w is resized to before padding to target (HF's
// get_patch_output_size: fit inside, ceil on the scaled side, capped at the target).
std::pair<int, int> anyres_resized_size(int orig_h, int orig_w, int target_h, int target_w);

// HF's get_resize_output_image_size(default_to_square=False): the short side becomes `size`,
// the long side int(size * long / short). Returns (h, w).
std::pair<int, int> shortest_edge_resize_size(int h, int w, int size);

// The uint8 image that CLIP normalisation is applied to: resize shortest edge (bicubic) then
// centre crop (HF center_crop, zero-padding when the image is smaller than the crop: PIL backend
// ceil((crop - size) / 2) before, torchvision backend floor). cfg.backend picks the resize.
Image clip_resize_crop(const Image& im, const ClipPreprocessConfig& cfg);
// LLaVA's expand2square with `fill` (the image centred; identity for a square image).
Image expand_to_square(const Image& im, std::array<uint8_t, 3> fill);
// The mean colour used by `pad`: tuple(int(x * 255) for x in mean) -> (122, 116, 104) for CLIP.
std::array<uint8_t, 3> mean_fill_color(const ClipPreprocessConfig& cfg);
// The uint8 crops of anyres before the CLIP steps: [base squashed to crop size, grid patches
// row-major]. grid_rows/cols are set through the out-parameters when non-null.
std::vector<Image> anyres_crops(const Image& im, const ClipPreprocessConfig& cfg,
                                const std::vector<std::pair<int, int>>& pinpoints_hw,
                                int* grid_rows = nullptr, int* grid_cols = nullptr);
// HF rescale + normalise of one uint8 image into CHW floats at `out` (3*h*w values):
//   Pil:         x = float32(double(v) * (1/255)); y = (x - float32(mean)) / float32(std);
//   Torchvision: y = (float32(v) - float32(mean) * 255) / (float32(std) * 255)
// all in float32 (the torchvision processors fold rescale into mean and std).
void normalize_to_chw(const Image& im, const ClipPreprocessConfig& cfg, float* out);

// Plain CLIP preprocessing of one image: n = 1.
PixelBatch clip_preprocess(const Image& im, const ClipPreprocessConfig& cfg);
// The LLaVA preprocessing in the chosen aspect mode. Anyres needs pinpoints ((h, w) pairs).
PixelBatch preprocess_image(const Image& im, AspectMode mode, const ClipPreprocessConfig& cfg,
                            const std::vector<std::pair<int, int>>& pinpoints_hw = {});
// The default LLaVA-1.6 pinpoints: (336,672), (672,336), (672,672), (1008,336), (336,1008).
std::vector<std::pair<int, int>> default_llava_pinpoints();

// STIC corruptions.
// torchvision Resize(short_side) on a PIL image: bilinear, short side -> short_side, long side
// int(short_side * long / short).
Image image_low_resolution(const Image& im, int short_side = 20);
// torchvision ColorJitter's brightness then hue steps with the given factors, using the
// functional-tensor formulas on uint8: brightness = clamp(f * v) truncated to uint8; hue:
// RGB -> HSV (floats in [0,1]), h = (h + hue_shift) mod 1, HSV -> RGB, * 255.999 truncated.
// hue_shift in [-0.5, 0.5]; brightness_factor >= 0.
Image image_color_jitter(const Image& im, float brightness_factor, float hue_shift);

// A transform applied to a decoded image before preprocessing (the corruptions above), carried
// by a generation request: the engine decodes, applies it, preprocesses, and keys its image and
// prefix caches on (path, key()).
struct ImageTransform {
  enum class Kind { None, LowRes, Jitter };
  Kind kind = Kind::None;
  int short_side = 20;                       // LowRes
  float brightness = 1.0f, hue = 0.0f;       // Jitter
  bool none() const { return kind == Kind::None; }
  std::string name() const;                  // "none" | "lowres" | "jitter"
  std::string key() const;                   // "" for None; exact parameters otherwise
  Image apply(const Image& im) const;        // a copy for None
};

}  // namespace stic
