#!/usr/bin/python3
"""Expected outputs for the image module's unit tests (tests/unit/base_image.cpp).

Run with a Python that has Pillow and numpy (on Debian: /usr/bin/python3 with python3-pil):
    /usr/bin/python3 tools/make-image-fixtures.py
It writes tests/fixtures/image_expected/:
  * a few small synthetic images that exercise decoder paths the photos don't (CMYK, grey and
    progressive JPEG, 4:2:2 / 4:4:4 subsampling, 16-bit grey, grey+alpha, 1-bit, palette with
    transparency, a JPEG truncated mid-scan), made with PIL from the photos;
  * expected.json: for every image PIL's open(p).convert("RGB") (size + sha256 of the bytes +
    per-channel sums), Pillow resizes at several sizes (BICUBIC, BILINEAR, NEAREST), and the
    HF transformers preprocessing (LlavaImageProcessor pad, LlavaNextImageProcessor anyres,
    plain CLIP) re-implemented here with PIL + numpy following transformers' PIL backend
    (image_processing_backends.PilBackend, image_transforms, image_processing_utils):
    sha256 of the uint8 crops before rescale, and of the float32 pixel_values.
Hashes keep the fixtures small; the C++ test reports per-channel sum differences on mismatch.
"""
import hashlib
import io
import json
import math
import os
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = os.path.join(ROOT, "tests", "fixtures", "images")
OUT = os.path.join(ROOT, "tests", "fixtures", "image_expected")

MEAN = [0.48145466, 0.4578275, 0.40821073]  # OPENAI_CLIP_MEAN
STD = [0.26862954, 0.26130258, 0.27577711]  # OPENAI_CLIP_STD
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]  # read as (h, w)


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def desc(a):
    """a: HWC uint8."""
    return {
        "w": int(a.shape[1]),
        "h": int(a.shape[0]),
        "sha256": sha(a),
        "sums": [int(a[..., c].astype(np.int64).sum()) for c in range(3)],
    }


def load_rgb(path):
    return np.array(Image.open(path).convert("RGB"))


# ---- synthetic decoder cases --------------------------------------------------------------

def make_synthetic():
    src = Image.open(os.path.join(PHOTOS, "chelsea.png")).convert("RGB")
    small = src.resize((67, 45), Image.BICUBIC)  # odd sizes: partial MCUs
    made = {}

    def save(name, im, **kw):
        path = os.path.join(OUT, name)
        im.save(path, **kw)
        made[name] = path

    save("cmyk.jpg", small.convert("CMYK"), quality=90)
    save("grey.jpg", small.convert("L"), quality=90)
    save("progressive.jpg", small, quality=85, progressive=True)
    save("sub422.jpg", small, quality=90, subsampling=1)
    save("sub444.jpg", small, quality=90, subsampling=0)
    save("sub420.jpg", small, quality=90, subsampling=2)
    g16 = (np.array(small.convert("L")).astype(np.uint16) * 3 + 17).astype(np.uint16)
    g16[0, :10] = [0, 1, 254, 255, 256, 257, 1000, 4000, 65534, 65535]
    save("grey16.png", Image.fromarray(g16))  # mode I;16
    la = small.convert("LA")
    la.putalpha(Image.linear_gradient("L").resize(small.size))
    save("grey_alpha.png", la)
    save("bilevel.png", small.convert("1"))
    pal = small.convert("P", palette=Image.ADAPTIVE, colors=16)
    save("palette_trns.png", pal, transparency=3)
    # (PIL cannot write 16-bit RGB PNGs; the 16-bit path is exercised by grey16.png.)
    # A JPEG cut in the middle of its scan data (PIL raises "image file is truncated").
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=95)
    full = buf.getvalue()
    with open(os.path.join(OUT, "cut_midscan.jpg"), "wb") as f:
        f.write(full[: len(full) * 7 // 10])
    made["cut_midscan.jpg"] = os.path.join(OUT, "cut_midscan.jpg")
    return made


# ---- HF transformers preprocessing, PIL backend (numpy, channels-first) ---------------------

def hf_resize(chw, h, w, resample=Image.BICUBIC):
    pil = Image.fromarray(np.transpose(chw, (1, 2, 0)))
    return np.transpose(np.array(pil.resize((w, h), resample=resample)), (2, 0, 1))


def get_resize_output_image_size(chw, size):
    height, width = chw.shape[1:]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def center_crop(chw, ch, cw):
    oh, ow = chw.shape[1:]
    top = (oh - ch) // 2
    left = (ow - cw) // 2
    if top >= 0 and top + ch <= oh and left >= 0 and left + cw <= ow:
        return chw[:, top : top + ch, left : left + cw]
    nh, nw = max(ch, oh), max(cw, ow)
    new = np.zeros((chw.shape[0], nh, nw), dtype=chw.dtype)
    tp = math.ceil((nh - oh) / 2)
    lp = math.ceil((nw - ow) / 2)
    new[:, tp : tp + oh, lp : lp + ow] = chw
    top += tp
    left += lp
    return new[:, max(0, top) : min(nh, top + ch), max(0, left) : min(nw, left + cw)]


def rescale_normalize(chw):
    x = (chw.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.array(MEAN, dtype=np.float32)
    std = np.array(STD, dtype=np.float32)
    return ((x.T - mean) / std).T


def clip_steps(chw, shortest=336, crop=336):
    h, w = get_resize_output_image_size(chw, shortest)
    r = hf_resize(chw, h, w)
    return center_crop(r, crop, crop)


def pad_to_square(chw, color):
    c, h, w = chw.shape
    if h == w:
        return chw
    m = max(h, w)
    out = np.zeros((c, m, m), dtype=chw.dtype)
    for i, v in enumerate(color):
        out[i] = v
    if w > h:
        s = (m - h) // 2
        out[:, s : s + h, :] = chw
    else:
        s = (m - w) // 2
        out[:, :, s : s + w] = chw
    return out


def select_best_resolution(original_size, possible_resolutions):
    original_height, original_width = original_size
    best_fit = None
    max_effective_resolution = 0
    min_wasted_resolution = float("inf")
    for height, width in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        dw, dh = int(original_width * scale), int(original_height * scale)
        effective = min(dw * dh, original_width * original_height)
        wasted = width * height - effective
        if effective > max_effective_resolution or (
            effective == max_effective_resolution and wasted < min_wasted_resolution
        ):
            max_effective_resolution = effective
            min_wasted_resolution = wasted
            best_fit = (height, width)
    return best_fit


def get_patch_output_size(hw, target):
    oh, ow = hw
    th, tw = target
    sw = tw / ow
    sh = th / oh
    if sw < sh:
        return min(math.ceil(oh * sw), th), tw
    return th, min(math.ceil(ow * sh), tw)


def anyres_patches(chw, size=336, patch=336):
    best = select_best_resolution(chw.shape[1:], PINPOINTS)
    nh, nw = get_patch_output_size(chw.shape[1:], best)
    resized = hf_resize(chw, nh, nw)
    py, ry = divmod(best[0] - nh, 2)
    px, rx = divmod(best[1] - nw, 2)
    padded = np.pad(resized, ((0, 0), (py, py + ry), (px, px + rx)), mode="constant")
    patches = []
    for i in range(0, padded.shape[1], patch):
        for j in range(0, padded.shape[2], patch):
            patches.append(padded[:, i : i + patch, j : j + patch])
    rows = len(range(0, padded.shape[1], patch))
    cols = len(range(0, padded.shape[2], patch))
    base = hf_resize(chw, size, size)
    return best, (nh, nw), (rows, cols), [base] + patches


def crops_desc(crops_chw):
    return [desc(np.transpose(c, (1, 2, 0))) for c in crops_chw]


def preprocess_cases(rgb):
    chw = np.transpose(rgb, (2, 0, 1))
    res = {}
    # plain CLIP (shortest edge 336, crop 336) and a non-square crop / no-crop variant
    c = clip_steps(chw)
    res["crop"] = {"crops": crops_desc([c]), "pixel_values_sha256": sha(rescale_normalize(c))}
    # LLaVA-1.5 pad (HF LlavaImageProcessor do_pad)
    color = tuple(int(x * 255) for x in MEAN)
    sq = pad_to_square(chw, color)
    c = clip_steps(sq)
    res["pad"] = {"fill": list(color), "crops": crops_desc([c]),
                  "pixel_values_sha256": sha(rescale_normalize(c))}
    # LLaVA-1.6 anyres (HF LlavaNextImageProcessor)
    best, resized, grid, crops = anyres_patches(chw)
    finals = [clip_steps(p) for p in crops]
    pv = np.stack([rescale_normalize(f) for f in finals])
    res["anyres"] = {"best_hw": list(best), "resized_hw": list(resized), "grid": list(grid),
                     "crops": crops_desc(finals), "pixel_values_sha256": sha(pv),
                     "pixel_values_shape": list(pv.shape),
                     "sample": [float(pv[0, 0, 0, 0]), float(pv[-1, 2, -1, -1])]}
    # small CLIP at 224 with a 200x180 crop (odd offsets)
    c = clip_steps(chw, 224, 224)
    c2 = center_crop(hf_resize(chw, *get_resize_output_image_size(chw, 224)), 180, 200)
    res["crop224"] = {"crops": crops_desc([c])}
    res["crop224_180x200"] = {"crops": crops_desc([c2])}
    # crop larger than the resized image: HF's center_crop zero-pads (ceil offsets)
    c3 = center_crop(hf_resize(chw, *get_resize_output_image_size(chw, 201)), 227, 240)
    res["crop201_227x240"] = {"crops": crops_desc([c3])}
    return res


# ---- torchvision ColorJitter functional-tensor formulas (float32 numpy) --------------------

def rgb2hsv(img):
    r, g, b = img[0], img[1], img[2]
    maxc = img.max(axis=0)
    minc = img.min(axis=0)
    eqc = maxc == minc
    cr = maxc - minc
    ones = np.ones_like(maxc)
    s = cr / np.where(eqc, ones, maxc)
    crd = np.where(eqc, ones, cr)
    rc = (maxc - r) / crd
    gc = (maxc - g) / crd
    bc = (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (np.float32(2.0) + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (np.float32(4.0) + gc - rc)
    h = hr + hg + hb
    h = np.fmod(h / np.float32(6.0) + np.float32(1.0), np.float32(1.0))
    return np.stack((h, s, maxc)).astype(np.float32)


def hsv2rgb(img):
    h, s, v = img[0], img[1], img[2]
    i = np.floor(h * np.float32(6.0))
    f = h * np.float32(6.0) - i
    i = i.astype(np.int32)
    one = np.float32(1.0)
    p = np.clip(v * (one - s), 0.0, 1.0).astype(np.float32)
    q = np.clip(v * (one - s * f), 0.0, 1.0).astype(np.float32)
    t = np.clip(v * (one - s * (one - f)), 0.0, 1.0).astype(np.float32)
    i = i % 6
    mask = i[None] == np.arange(6, dtype=np.int32)[:, None, None]
    a1 = np.stack((v, q, p, p, t, v))
    a2 = np.stack((t, v, v, q, p, p))
    a3 = np.stack((p, p, t, v, v, q))
    a4 = np.stack((a1, a2, a3))
    return np.einsum("...ijk,...xijk->...xjk", mask.astype(np.float32), a4).astype(np.float32)


def color_jitter(rgb, bf, hue):
    img = np.transpose(rgb, (2, 0, 1))
    x = np.float32(bf) * img.astype(np.float32) + np.float32(1.0 - bf) * np.float32(0)
    x = np.clip(x, 0, 255).astype(np.uint8)
    if hue == 0:
        return np.transpose(x, (1, 2, 0))
    f = x.astype(np.float32) / np.float32(255.0)
    hsv = rgb2hsv(f)
    hsv[0] = np.mod(hsv[0] + np.float32(hue), np.float32(1.0))
    out = hsv2rgb(hsv)
    out = (out * np.float32(255.999)).astype(np.uint8)
    return np.transpose(out, (1, 2, 0))


def main():
    os.makedirs(OUT, exist_ok=True)
    synthetic = make_synthetic()
    photos = {n: os.path.join(PHOTOS, n) for n in sorted(os.listdir(PHOTOS))}
    exp = {"pil_version": Image.__version__, "decode": {}, "decode_errors": [],
           "resize": {}, "preprocess": {}, "jitter": {}, "lowres": {}}
    resize_sizes = [(336, 224), (224, 336), (672, 448), (20, 20), (333, 17), (1, 1), (7, 500)]
    decoded = {}
    for group, files in (("photos", photos), ("synthetic", synthetic)):
        for name, path in files.items():
            rel = os.path.relpath(path, ROOT)
            try:
                rgb = load_rgb(path)
            except Exception as e:  # PIL refuses it: so must we
                exp["decode_errors"].append({"path": rel, "pil_error": str(e)})
                continue
            exp["decode"][rel] = desc(rgb)
            decoded[rel] = rgb
    for rel, rgb in decoded.items():
        h, w = rgb.shape[:2]
        sizes = list(resize_sizes)
        # shortest-edge 20 (low-res corruption) and 336 sizes of this image
        s20 = get_resize_output_image_size(np.transpose(rgb, (2, 0, 1)), 20)
        s336 = get_resize_output_image_size(np.transpose(rgb, (2, 0, 1)), 336)
        sizes += [(s20[1], s20[0]), (s336[1], s336[0]), (w, h + 1), (w * 2, h)]
        entries = []
        pil = Image.fromarray(rgb)
        for (tw, th) in sizes:
            for fname, filt in (("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR),
                                ("nearest", Image.NEAREST)):
                if fname == "nearest" and (tw, th) not in resize_sizes[:3]:
                    continue
                r = np.array(pil.resize((tw, th), filt))
                e = desc(r)
                e["filter"] = fname
                entries.append(e)
        exp["resize"][rel] = entries
        if rel.startswith("tests/fixtures/images/"):
            exp["preprocess"][rel] = preprocess_cases(rgb)
            lr = np.array(pil.resize((s20[1], s20[0]), Image.BILINEAR))
            exp["lowres"][rel] = desc(lr)
    for rel in ("tests/fixtures/images/chelsea.png", "tests/fixtures/images/coffee.png",
                "tests/fixtures/images/palette_color.png"):
        rgb = decoded[rel]
        exp["jitter"][rel] = []
        for bf, hue in ((1.0, 0.0), (0.5, 0.0), (1.37, 0.0), (1.0, 0.25), (0.8, -0.3),
                        (1.5, 0.3), (1.2, -0.05)):
            e = desc(color_jitter(rgb, bf, hue))
            e["brightness"] = bf
            e["hue"] = hue
            exp["jitter"][rel].append(e)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes), {len(exp['decode'])} decodes, "
          f"{sum(len(v) for v in exp['resize'].values())} resizes, "
          f"errors: {[e['path'] for e in exp['decode_errors']]}", file=sys.stderr)


if __name__ == "__main__":
    main()
