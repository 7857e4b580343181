#!/usr/bin/env python3
"""Expected outputs of HF transformers' torchvision image processors, for stic's
--image-backend torchvision (tests/unit/torch_image_backend.cpp).

Needs transformers >= 5 (its default CLIPImageProcessor / LlavaImageProcessor /
LlavaNextImageProcessor are the torchvision ones; transformers 4.4x-4.5x's ...ImageProcessorFast
classes are taken when the default is not), torch and torchvision, on an x86 CPU (the processors
run on the CPU; there torchvision's uint8 bicubic resize is ATen's integer kernel). No GPU, no
network, no model weights: the processors are built from their settings.

    python3 tools/make_tv_image_fixtures.py

writes
  tests/fixtures/image_expected/tv_pixels.safetensors
      resize/<photo>/<w>x<h>      uint8 [h, w, 3]: tvF.resize(pil_to_tensor(img), (h, w),
                                  BICUBIC, antialias=True), channels last
      <mode>/<photo>/levels       uint8 [n, 3, 336, 336]: per element, the pixel level v whose
                                  normalised value the processor returned
      <mode>/<photo>/lut          float32 [3, 256]: the processor's value for level v of channel
                                  c (NaN where the level does not occur)
    so pixel_values[i, c, y, x] == lut[c, levels[i, c, y, x]] exactly (checked before writing:
    a uint8 level and a 3 x 256 table hold the float32 pixel_values losslessly in a quarter of
    the bytes); <mode> is crop (CLIPImageProcessor), pad (LlavaImageProcessor, do_pad) or anyres
    (LlavaNextImageProcessor; n = 1 + grid patches)
  tests/fixtures/image_expected/tv_settings.json
      library versions, the CPU capability torch used, each processor's class and settings, and
      per case the shape, image_sizes and the sha256 of the float32 pixel_values.
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torchvision
import transformers
from PIL import Image
from safetensors.torch import save_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as tvF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = os.path.join(ROOT, "tests", "fixtures", "images")
OUT = os.path.join(ROOT, "tests", "fixtures", "image_expected")

MEAN = [0.48145466, 0.4578275, 0.40821073]  # OPENAI_CLIP_MEAN
STD = [0.26862954, 0.26130258, 0.27577711]  # OPENAI_CLIP_STD
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]  # (h, w)
# wide, portrait, landscape needing an upscale for anyres, tiny (10 x 10)
CROP_PAD_PHOTOS = ["chelsea.png", "china_wide.jpg", "flower_portrait.jpg", "palette_color.png"]
ANYRES_PHOTOS = ["chelsea.png", "palette_color.png"]
RESIZE_PHOTOS = ["chelsea.png", "china_wide.jpg", "flower_portrait.jpg", "logo.png", "palette_color.png"]
RESIZE_SIZES = [(97, 61), (61, 97), (168, 112), (20, 20), (333, 17), (7, 500)]  # (w, h)

# everything else is each class's default: BICUBIC, rescale 1/255, OPENAI_CLIP_MEAN / _STD,
# convert to RGB, centre crop (recorded in tv_settings.json)
COMMON = dict(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})


def torchvision_processor(name, **kw):
    """transformers' torchvision processor `name` (v5 default class, or v4's `name`Fast)."""
    cls = getattr(transformers, name, None)
    if cls is not None:
        p = cls(**kw)
        if getattr(p, "backend", None) == "torchvision":
            return p
    fast = getattr(transformers, name + "Fast", None)
    if fast is None:
        sys.exit(f"transformers {transformers.__version__} has no torchvision {name}")
    p = fast(**kw)
    if not (getattr(p, "backend", None) == "torchvision" or type(p).__name__.endswith("Fast")):
        sys.exit(f"{type(p).__name__} is not a torchvision processor")
    return p


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def to_levels(pv, name):
    """float32 [n, 3, H, W] -> (uint8 levels, float32 [3, 256] table), lossless (asserted)."""
    levels = np.zeros(pv.shape, dtype=np.uint8)
    lut = np.full((3, 256), np.nan, dtype=np.float32)
    for c in range(3):
        x = pv[:, c]
        # invert y = (v - 255 mean) / (255 std) in double, then check the table reproduces x
        v = np.rint(x.astype(np.float64) * (STD[c] * 255.0) + MEAN[c] * 255.0)
        if v.min() < 0 or v.max() > 255:
            sys.exit(f"{name}: channel {c} is not a normalised uint8 image")
        v = v.astype(np.uint8)
        levels[:, c] = v
        for lv in np.unique(v):
            vals = np.unique(x[v == lv])
            if len(vals) != 1:
                sys.exit(f"{name}: channel {c} level {lv} has {len(vals)} distinct values")
            lut[c, lv] = vals[0]
        if not np.array_equal(lut[c][levels[:, c]], x):
            sys.exit(f"{name}: channel {c}: the level table does not reproduce pixel_values")
    return levels, lut


def main():
    cap = torch.backends.cpu.get_cpu_capability()
    settings = {
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "pillow": Image.__version__,
                     "numpy": np.__version__},
        "torch_cpu_capability": cap,
        "processors": {},
        "cases": {},
    }
    if "AVX2" not in cap and "AVX512" not in cap:
        print(f"warning: torch CPU capability {cap}: not ATen's AVX2 uint8 kernel (the generic one "
              "computes the same integers)", file=sys.stderr)
    procs = {
        "crop": torchvision_processor("CLIPImageProcessor", **COMMON),
        "pad": torchvision_processor("LlavaImageProcessor", do_pad=True, **COMMON),
        "anyres": torchvision_processor("LlavaNextImageProcessor", image_grid_pinpoints=PINPOINTS,
                                        **COMMON),
    }
    for mode, p in procs.items():
        settings["processors"][mode] = {"class": type(p).__name__,
                                        "backend": getattr(p, "backend", "torchvision"),
                                        "settings": json.loads(p.to_json_string())}
    tensors = {}

    def rel(n):
        return "tests/fixtures/images/" + n

    for n in RESIZE_PHOTOS:
        img = Image.open(os.path.join(PHOTOS, n)).convert("RGB")
        t = tvF.pil_to_tensor(img)
        for (w, h) in RESIZE_SIZES:
            r = tvF.resize(t, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
            tensors[f"resize/{rel(n)}/{w}x{h}"] = r.permute(1, 2, 0).contiguous()
    for mode, photos in (("crop", CROP_PAD_PHOTOS), ("pad", CROP_PAD_PHOTOS), ("anyres", ANYRES_PHOTOS)):
        for n in photos:
            img = Image.open(os.path.join(PHOTOS, n)).convert("RGB")
            out = procs[mode](images=[img], return_tensors="pt")
            pv = out["pixel_values"]
            if mode == "anyres":
                pv = pv[0]  # [1, n, 3, H, W] -> [n, 3, H, W]
            pv = pv.to(torch.float32).contiguous().numpy()
            name = f"{mode}/{rel(n)}"
            levels, lut = to_levels(pv, name)
            tensors[name + "/levels"] = torch.from_numpy(levels)
            tensors[name + "/lut"] = torch.from_numpy(lut)
            case = {"shape": list(pv.shape), "pixel_values_sha256": sha(pv),
                    "orig_hw": [img.height, img.width]}
            if "image_sizes" in out:
                case["image_sizes"] = [int(x) for x in out["image_sizes"][0]]
            settings["cases"][name] = case
    os.makedirs(OUT, exist_ok=True)
    st = os.path.join(OUT, "tv_pixels.safetensors")
    save_file(tensors, st, metadata={"transformers": transformers.__version__, "torch": torch.__version__,
                                     "torchvision": torchvision.__version__, "cpu_capability": cap})
    with open(os.path.join(OUT, "tv_settings.json"), "w") as f:
        json.dump(settings, f, indent=1, sort_keys=True)
    print(f"wrote {st} ({os.path.getsize(st)} bytes, {len(tensors)} tensors) and tv_settings.json; "
          f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, CPU {cap}", file=sys.stderr)


if __name__ == "__main__":
    main()
