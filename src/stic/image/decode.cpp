// stic/image/decode.cpp — JPEG/PNG decoding to RGB8, equal to PIL's open(p).convert("RGB").
//
// JPEG: libjpeg-turbo through the TurboJPEG API with the decoder settings PIL uses (ISLOW DCT,
// fancy upsampling, libjpeg's own YCbCr->RGB). CMYK/YCCK JPEGs are decoded to CMYK and converted
// the way PIL does: PIL reads them as inverted ("CMYK;I", Adobe convention) and its cmyk2rgb is
// r = nk - nk*c/255 (rounded) with nk = 255 - k. A JPEG whose data ends before the end-of-image
// marker is an error, as in PIL ("image file is truncated"); other libjpeg warnings (corrupt
// entropy data that libjpeg recovers from) are tolerated, as PIL tolerates them.
// PNG (and BMP/GIF): stb_image. Grey is replicated, alpha dropped without compositing, palettes
// expanded. 16-bit images keep the high byte, except 16-bit grey, which PIL opens as a 32-bit
// integer image and clips to 255 when converting to RGB.
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <turbojpeg.h>

#include "stic/image/image.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

// Private copies of stb (static functions) so that no other translation unit can clash.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace stic {
namespace {

struct TjHandle {
  tjhandle h = nullptr;
  TjHandle() : h(tjInitDecompress()) {}
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

struct JpegMarkers {
  bool has_sos = false;
  bool has_eoi_after_sos = false;
  bool ends_in_header = false;  // the data stops before the first start-of-scan
};

// Walks the marker segments up to the first start-of-scan, then looks for an end-of-image
// marker after it. Inside entropy-coded data 0xFF is always followed by 0x00 or a restart
// marker, so a 0xFF 0xD9 pair after the first SOS is a real EOI.
JpegMarkers scan_jpeg_markers(const uint8_t* d, size_t n) {
  JpegMarkers m;
  size_t pos = 2;
  size_t sos = 0;
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) return m;  // malformed: let the decoder report it
    const uint8_t marker = d[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    const size_t len = (static_cast<size_t>(d[pos + 2]) << 8) | d[pos + 3];
    if (marker == 0xDA) {
      sos = pos;
      m.has_sos = true;
      break;
    }
    pos += 2 + len;
  }
  if (!m.has_sos) {
    m.ends_in_header = pos + 4 > n;
    return m;
  }
  for (size_t i = sos + 2; i + 1 < n; ++i) {
    if (d[i] == 0xFF && d[i + 1] == 0xD9) {
      m.has_eoi_after_sos = true;
      break;
    }
  }
  return m;
}

inline uint8_t clip8(int v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// PIL's MULDIV255: a * b / 255, rounded, in integers.
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// PIL's decompression-bomb guard: Image.open refuses more than 2 * MAX_IMAGE_PIXELS
// (2 * 89,478,485) pixels; checked from the header, before any pixel is decoded.
void check_pixels(int64_t w, int64_t h, const std::string& name) {
  const int64_t limit = image_max_pixels();
  if (w > 0 && h > 0 && w * h > limit)
    fail(name, ": image of ", w, "x", h, " = ", w * h, " pixels exceeds the limit of ", limit,
         " (a decompression bomb? PIL refuses it too; STIC_MAX_IMAGE_PIXELS raises the limit)");
}

uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }
uint32_t le32(const uint8_t* p) { return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0]; }

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  const JpegMarkers markers = scan_jpeg_markers(data, size);
  TjHandle tj;
  if (!tj.h) fail(name, ": cannot initialise the JPEG decoder: ", tjGetErrorStr2(nullptr));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  // TurboJPEG's API takes a non-const buffer in 2.x but never writes to it.
  unsigned char* buf = const_cast<unsigned char*>(data);
  if (tjDecompressHeader3(tj.h, buf, static_cast<unsigned long>(size), &w, &h, &subsamp,
                          &colorspace) != 0) {
    if (markers.ends_in_header)
      fail(name, ": truncated JPEG (the data ends inside the header; decoder: ",
           tjGetErrorStr2(tj.h), ")");
    fail(name, ": cannot decode JPEG header: ", tjGetErrorStr2(tj.h));
  }
  if (markers.ends_in_header)
    fail(name, ": truncated JPEG (the data ends inside the header, before any image data)");
  if (w <= 0 || h <= 0) fail(name, ": JPEG has an invalid size ", w, "x", h);
  check_pixels(w, h, name);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
  const int ps = tjPixelSize[pf];
  std::vector<uint8_t> pix(static_cast<size_t>(w) * h * ps);
  const int flags = TJFLAG_ACCURATEDCT;  // ISLOW; fancy upsampling is the default
  const int rc = tjDecompress2(tj.h, buf, static_cast<unsigned long>(size), pix.data(), w,
                               w * ps, h, pf, flags);
  std::string warning;
  if (rc != 0) {
    const std::string msg = tjGetErrorStr2(tj.h);
    if (tjGetErrorCode(tj.h) != TJERR_WARNING) fail(name, ": cannot decode JPEG: ", msg);
    warning = msg;
  }
  if (warning.find("Premature end") != std::string::npos)
    fail(name, ": truncated JPEG (", warning, ")");
  if (markers.ends_in_header || !markers.has_eoi_after_sos)
    fail(name, ": truncated JPEG (the data ends before the end-of-image marker",
         warning.empty() ? "" : "; decoder: ", warning, ")");
  Image im;
  im.width = w;
  im.height = h;
  if (!cmyk) {
    im.rgb = std::move(pix);
    return im;
  }
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  const size_t npx = static_cast<size_t>(w) * h;
  for (size_t i = 0; i < npx; ++i) {
    const uint8_t* s = &pix[i * 4];
    // PIL's "CMYK;I" unpacking inverts the stored (Adobe) values.
    const int c = 255 - s[0], m = 255 - s[1], y = 255 - s[2], k = 255 - s[3];
    const int nk = 255 - k;
    im.rgb[i * 3 + 0] = clip8(nk - muldiv255(c, nk));
    im.rgb[i * 3 + 1] = clip8(nk - muldiv255(m, nk));
    im.rgb[i * 3 + 2] = clip8(nk - muldiv255(y, nk));
  }
  return im;
}

Image decode_stb(const uint8_t* data, size_t size, const std::string& name) {
  if (size > static_cast<size_t>(INT32_MAX)) fail(name, ": image file too large");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp))
    fail(name, ": cannot decode image: ", stbi_failure_reason());
  Image im;
  if (comp == 1 && stbi_is_16_bit_from_memory(data, len)) {
    int ww = 0, hh = 0, cc = 0;
    stbi_us* p = stbi_load_16_from_memory(data, len, &ww, &hh, &cc, 1);
    if (!p) fail(name, ": cannot decode image: ", stbi_failure_reason());
    im.width = ww;
    im.height = hh;
    im.rgb.resize(static_cast<size_t>(ww) * hh * 3);
    for (size_t i = 0, n = static_cast<size_t>(ww) * hh; i < n; ++i) {
      const uint8_t v = p[i] > 255 ? 255 : static_cast<uint8_t>(p[i]);
      im.rgb[i * 3 + 0] = im.rgb[i * 3 + 1] = im.rgb[i * 3 + 2] = v;
    }
    stbi_image_free(p);
    return im;
  }
  int ww = 0, hh = 0, cc = 0;
  stbi_uc* p = stbi_load_from_memory(data, len, &ww, &hh, &cc, 3);
  if (!p) fail(name, ": cannot decode image: ", stbi_failure_reason());
  im.width = ww;
  im.height = hh;
  im.rgb.assign(p, p + static_cast<size_t>(ww) * hh * 3);
  stbi_image_free(p);
  return im;
}

// PNG chunks as the format lays them out (length, type, data, CRC-32 of type + data), walked to
// IEND: a chunk that runs past the file or fails its CRC is a located error, as PIL raises "broken
// PNG file" (stb_image does not check CRCs and would decode corrupt data silently).
void check_png_chunks(const uint8_t* data, size_t size, const std::string& name) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  size_t at = 8;
  while (at + 12 <= size) {
    const uint64_t len = be32(data + at);
    const std::string type(reinterpret_cast<const char*>(data + at + 4), 4);
    if (len > size - at - 12)
      fail(name, ": PNG chunk '", type, "' at byte ", at, " claims ", len, " bytes, past the end of the file (", size, " bytes)");
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = at + 4; i < at + 8 + len; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    c ^= 0xFFFFFFFFu;
    const uint32_t want = static_cast<uint32_t>(be32(data + at + 8 + len));
    if (c != want) fail(name, ": PNG chunk '", type, "' at byte ", at, " fails its CRC check (corrupt file)");
    at += 12 + len;
    if (type == "IEND") return;
  }
  fail(name, ": PNG file is truncated (no IEND chunk)");
}

}  // namespace

Image image_decode(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0 || data == nullptr) fail(name, ": cannot decode image: empty data (0 bytes)");
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
    return decode_jpeg(data, size, name);
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  const bool is_png = size >= 8 && std::memcmp(data, kPng, 8) == 0;
  const bool is_gif = size >= 6 && std::memcmp(data, "GIF8", 4) == 0;
  const bool is_bmp = size >= 2 && data[0] == 'B' && data[1] == 'M';
  // the size the header claims, checked before stb allocates for it
  if (is_png && size >= 24) {
    const int64_t w = be32(data + 16), h = be32(data + 20);
    if (w == 0 || h == 0) fail(name, ": PNG header claims a size of ", w, "x", h);
    check_pixels(w, h, name);
  }
  if (is_png) check_png_chunks(data, size, name);
  if (is_gif && size >= 10) check_pixels(data[6] | (data[7] << 8), data[8] | (data[9] << 8), name);
  if (is_bmp && size >= 26) {
    const int64_t w = static_cast<int32_t>(le32(data + 18)), h = static_cast<int32_t>(le32(data + 22));
    check_pixels(std::llabs(w), std::llabs(h), name);
  }
  if (is_png || is_gif || is_bmp) return decode_stb(data, size, name);
  fail(name, ": cannot decode image: not a JPEG or PNG file (unrecognised header, ", size,
       " bytes)");
}

int64_t image_max_pixels() {
  static const int64_t v = [] {
    const char* e = std::getenv("STIC_MAX_IMAGE_PIXELS");
    const long long x = e ? std::atoll(e) : 0;
    return x > 0 ? static_cast<int64_t>(x) : int64_t{2} * 89478485;
  }();
  return v;
}

int64_t image_max_file_bytes() {
  static const int64_t v = [] {
    const char* e = std::getenv("STIC_MAX_IMAGE_BYTES");
    const long long x = e ? std::atoll(e) : 0;
    return x > 0 ? static_cast<int64_t>(x) : int64_t{512} << 20;
  }();
  return v;
}

Image image_load(const std::string& path) {
  // regular files only, of bounded size: a directory, /dev/zero or a FIFO is refused before reading
  namespace fs = std::filesystem;
  check_regular_file(path, "image file");
  std::error_code ec;
  const auto bytes_on_disk = fs::file_size(path, ec);
  if (!ec && static_cast<int64_t>(bytes_on_disk) > image_max_file_bytes())
    fail(path, ": image file of ", bytes_on_disk, " bytes exceeds the limit of ", image_max_file_bytes(),
         " (STIC_MAX_IMAGE_BYTES raises it)");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open image file: ", std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                             std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, ": cannot read image file: ", std::strerror(errno));
  if (bytes.empty()) fail(path, ": cannot decode image: empty file (0 bytes)");
  return image_decode(bytes.data(), bytes.size(), path);
}

bool image_save_png(const Image& im, const std::string& path) {
  if (im.width <= 0 || im.height <= 0 ||
      im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    return false;
  return stbi_write_png(path.c_str(), im.width, im.height, 3, im.rgb.data(), im.width * 3) != 0;
}

}  // namespace stic
