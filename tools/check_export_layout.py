#!/usr/bin/env python3
"""`stic export --layout` checked by HF transformers: converted folders load with from_pretrained and
AutoProcessor and give the source model's logits on a real image.

Export here (CPU is enough; E is any new folder):
    for n in llava_llama next_mistral; do
      stic export --model tests/fixtures/parity/$n --out E/${n}_orig --layout original --dtype fp32
      stic export --model E/${n}_orig --out E/${n}_back --layout llava-hf --dtype fp32
    done
    stic export --model tests/fixtures/parity/orig_mistral --out E/orig_mistral_hf --layout llava-hf --dtype fp32
then on the GPU machine (transformers 5.x; runs on CPU, fp32):
    python3 tools/check_export_layout.py --exported E --out RESULT.json

Checks, per converted llava-hf folder (NAME_back: llava-hf -> original -> llava-hf; orig_mistral_hf:
original -> llava-hf with "<image>" added to a tokenizer.model-only tokenizer) against the parity
llava-hf checkpoint it came from:
  - AutoTokenizer maps "<image>" to config.image_token_index;
  - AutoProcessor gives the same pixel values and the same ids (image token ids aside);
  - the model's logits over the source vocabulary equal the source model's (max abs error);
orig_mistral_hf has no llava-hf source HF could load: it must load, map "<image>" to
image_token_index, and run the processor's inputs (transformers checks that the processor's
image token count equals the features the model computes) to finite logits;
and per original-layout folder (NAME_orig), that vision_tower/ loads as CLIPVisionModel +
CLIPImageProcessor and holds the same tensors as the checkpoint's model.vision_tower.vision_tower.*.
Exit status 1 when a check fails (logits: error above 1e-5).
"""
import argparse, glob, json, os, sys

import torch
import transformers
from PIL import Image
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY = os.path.join(ROOT, "tests", "fixtures", "parity")
IMAGE = os.path.join(ROOT, "tests", "fixtures", "images", "china.jpg")
PROMPT = "USER: <image>\nWhat is shown in this image? ASSISTANT:"
CASES = {  # converted folder -> (source parity checkpoint, class)
    "llava_llama_back": ("llava_llama", transformers.LlavaForConditionalGeneration),
    "next_mistral_back": ("next_mistral", transformers.LlavaNextForConditionalGeneration),
    "orig_mistral_hf": (None, transformers.LlavaNextForConditionalGeneration),
}


def run(folder, cls):
    proc = transformers.AutoProcessor.from_pretrained(folder)
    model = cls.from_pretrained(folder, dtype=torch.float32).eval()
    # the parity folders keep only the image processor: the processor's token-count settings
    # then come from the model config (as HF's own conversion scripts write them)
    if getattr(proc, "patch_size", None) is None:
        proc.patch_size = model.config.vision_config.patch_size
    if getattr(proc, "vision_feature_select_strategy", None) is None:
        proc.vision_feature_select_strategy = model.config.vision_feature_select_strategy
    if not os.path.exists(os.path.join(folder, "processor_config.json")):
        proc.num_additional_image_tokens = 1  # CLIP's CLS token, as HF's conversion scripts write it
    inputs = proc(images=Image.open(IMAGE).convert("RGB"), text=PROMPT, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs, use_cache=False).logits[0].float()
    return proc, model, inputs, logits


def state(folder):
    out = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        out.update(load_file(f))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exported", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": {}}
    ok = True
    for sub, (src, cls) in CASES.items():
        d = os.path.join(a.exported, sub)
        if not os.path.isdir(d):
            res["cases"][sub] = "missing"
            ok = False
            continue
        c = {}
        try:
            proc, model, got_in, got = run(d, cls)
        except Exception as e:  # noqa: record and go on to the other cases
            res["cases"][sub] = {"error": f"{type(e).__name__}: {e}"[:400]}
            ok = False
            continue
        img_id = model.config.image_token_index if hasattr(model.config, "image_token_index") else model.config.image_token_id
        c["tokenizer_image_id"] = proc.tokenizer.convert_tokens_to_ids("<image>")
        c["config_image_id"] = img_id
        c["image_id_ok"] = c["tokenizer_image_id"] == img_id
        if src is None:
            c["image_tokens"] = int((got_in["input_ids"] == img_id).sum())
            c["logits_finite"] = bool(torch.isfinite(got).all())
            ok &= c["image_id_ok"] and c["logits_finite"]
            res["cases"][sub] = c
            continue
        try:
            _, _, ref_in, ref = run(os.path.join(PARITY, src), cls)
        except Exception as e:  # noqa
            c["error"] = f"reference: {type(e).__name__}: {e}"[:400]
            res["cases"][sub] = c
            ok = False
            continue
        ids_a = [x if x != img_id else -1 for x in got_in["input_ids"][0].tolist()]
        src_id = json.load(open(os.path.join(PARITY, src, "config.json")))["image_token_index"]
        ids_b = [x if x != src_id else -1 for x in ref_in["input_ids"][0].tolist()]
        c["ids_equal"] = ids_a == ids_b
        c["pixels_equal"] = bool(torch.equal(got_in["pixel_values"], ref_in["pixel_values"]))
        v = ref.shape[-1]
        c["vocab"] = [v, got.shape[-1]]
        c["logits_max_abs_err"] = (got[..., :v] - ref).abs().max().item() if got.shape[0] == ref.shape[0] else None
        c["logits_max_abs"] = ref.abs().max().item()
        ok &= c["image_id_ok"] and c["ids_equal"] and c["pixels_equal"] and c["logits_max_abs_err"] is not None \
            and c["logits_max_abs_err"] <= 1e-5
        res["cases"][sub] = c
    for n in ("llava_llama_orig", "next_mistral_orig"):
        d = os.path.join(a.exported, n)
        if not os.path.isdir(d):
            res["cases"][n] = "missing"
            ok = False
            continue
        c = {}
        vt = os.path.join(d, "vision_tower")
        _, info = transformers.CLIPVisionModel.from_pretrained(vt, dtype=torch.float32, output_loading_info=True)
        transformers.CLIPImageProcessor.from_pretrained(vt)
        c["tower_missing_keys"] = sorted(info.get("missing_keys", []))
        c["tower_unexpected_keys"] = sorted(info.get("unexpected_keys", []))
        main_sd = state(d)
        pre = "model.vision_tower.vision_tower."
        emb = {k[len(pre):]: t for k, t in main_sd.items() if k.startswith(pre)}
        # the tower folder's file holds the checkpoint's tower tensors (transformers 5 renames
        # CLIPVisionModel's own state-dict keys, so the file is compared, and the load checked above)
        sd = state(vt)
        c["tower_tensors"] = len(emb)
        c["tower_equal"] = set(sd) == set(emb) and all(torch.equal(sd[k], t) for k, t in emb.items())
        c["tower_equal"] = c["tower_equal"] and not c["tower_missing_keys"] and not c["tower_unexpected_keys"]
        cfg = json.load(open(os.path.join(d, "config.json")))
        c["mm_fields"] = {k: cfg.get(k) for k in ("mm_vision_tower", "mm_projector_type", "mm_vision_select_layer",
                                                  "mm_vision_select_feature", "mm_patch_merge_type", "image_aspect_ratio")}
        ok &= c["tower_equal"] and c["tower_tensors"] > 0
        res["cases"][n] = c
    res["ok"] = bool(ok)
    json.dump(res, open(a.out, "w"), indent=1)
    print(json.dumps(res, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
