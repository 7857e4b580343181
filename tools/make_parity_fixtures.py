#!/usr/bin/env python3
"""Build tiny random-weight LLaVA checkpoints with HF transformers and dump HF's outputs.

Run on the GPU machine (it has transformers 5.x, torch, PIL, sentencepiece):
    python3 tools/make_parity_fixtures.py --out tests/fixtures/parity
Everything it writes is small and committed; the C++ parity tests read it on CPU in CI.

Checkpoints (all from one tiny SentencePiece tokenizer, tests/fixtures/tokenizer/tiny.model,
with "<image>" added as id 1000):
  llava_llama      LlavaForConditionalGeneration, Llama MHA decoder, `pad` (expand-to-square) images
  next_mistral     LlavaNextForConditionalGeneration, Mistral GQA decoder, anyres
  next_llama_bf16  LlavaNextForConditionalGeneration, Llama decoder, multi-layer features,
                   other pinpoints, stored bf16 and sharded (model.safetensors.index.json)
  orig_mistral     next_mistral re-saved in the original LLaVA layout (llava_mistral keys,
                   mm_projector, separate CLIP folder) — no HF class loads it; C++ compares
                   it with next_mistral.
For each (checkpoint, photo, prompt) case: HF's pixel values (PIL backend), the expanded
input ids, full logits (fp32, CPU), 16 greedy tokens (argmax loop without cache) and
HF generate()'s greedy tokens. Also HF's token ids for a list of strings (both `legacy` modes).
"""
import argparse, json, os, shutil, sys, time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file, load_file

import transformers
from transformers import (CLIPVisionConfig, LlamaConfig, MistralConfig, LlavaConfig,
                          LlavaNextConfig, LlavaForConditionalGeneration,
                          LlavaNextForConditionalGeneration)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMG = os.path.join(ROOT, "tests", "fixtures", "images")
TOK = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "tiny.model")
IMAGE_ID = 1000
VOCAB = 1024
CROP = 112   # tiny CLIP: 112 px, patch 14 -> 8x8 = 64 tokens per crop
STD = 0.08

VICUNA_SYS = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def log(*a):
    print(*a, flush=True)


def make_tokenizer(dirpath, legacy):
    """Save a llava-hf style tokenizer folder (tokenizer.model + configs) and load it with HF."""
    from transformers import AutoTokenizer
    os.makedirs(dirpath, exist_ok=True)
    shutil.copy(TOK, os.path.join(dirpath, "tokenizer.model"))
    cfg = {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "legacy": legacy, "model_max_length": 4096, "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {
            "0": {"content": "<unk>", "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False},
            "1": {"content": "<s>", "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False},
            "2": {"content": "</s>", "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False},
            str(IMAGE_ID): {"content": "<image>", "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False},
        },
    }
    with open(os.path.join(dirpath, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    tok = AutoTokenizer.from_pretrained(dirpath)
    if tok.convert_tokens_to_ids("<image>") != IMAGE_ID:
        tok.add_tokens(["<image>"], special_tokens=True)
    assert tok.convert_tokens_to_ids("<image>") == IMAGE_ID, tok.convert_tokens_to_ids("<image>")
    return tok


TOKENIZER_TEXTS = [
    "Hello world", " Hello world", "Hello  world ", "hello\nworld", "\n", " ", "", "a\tb",
    "The license 1234567 and 3.14", "émigré café naïve", "日本語のテキスト", "emoji 🙂 here",
    "<image>", "<image>\nDescribe the image.", "USER: <image>\nWhat is this? ASSISTANT:",
    "[INST] <image>\nDescribe the image. [/INST]", "a<image>b", "<image> <image>", "x </s> y <s>",
    VICUNA_SYS + " USER: <image>\nWhat is shown in this image? ASSISTANT:",
    "Please provide a detailed description of the image, focusing on the following.",
    "  leading spaces and trailing   ", "Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>",
]


def widen_init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * STD)
            elif "norm" in name or "layrnorm" in name or "layer_norm" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:  # biases, image_newline, class_embedding
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def vision_config():
    return CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=4, image_size=CROP, patch_size=14,
                            projection_dim=64, hidden_act="quick_gelu", layer_norm_eps=1e-5)


def text_config(kind):
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=1,
                  eos_token_id=2, pad_token_id=None, tie_word_embeddings=False)
    if kind == "llama":
        return LlamaConfig(num_attention_heads=4, num_key_value_heads=4, rope_theta=10000.0, **common)
    return MistralConfig(num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6,
                         sliding_window=None, **common)


PINPOINTS_A = [[112, 224], [224, 112], [224, 224], [336, 112], [112, 336]]
PINPOINTS_B = [[112, 224], [224, 112], [224, 224], [224, 336], [336, 224], [112, 448]]


def build(name):
    vc = vision_config()
    if name == "llava_llama":
        cfg = LlavaConfig(vision_config=vc, text_config=text_config("llama"), image_token_index=IMAGE_ID,
                          image_token_id=IMAGE_ID, projector_hidden_act="gelu",
                          vision_feature_select_strategy="default", vision_feature_layer=-2,
                          tie_word_embeddings=False)
        model = LlavaForConditionalGeneration(cfg)
    elif name == "next_mistral":
        cfg = LlavaNextConfig(vision_config=vc, text_config=text_config("mistral"), image_token_index=IMAGE_ID,
                              image_token_id=IMAGE_ID, projector_hidden_act="gelu",
                              vision_feature_select_strategy="default", vision_feature_layer=-2,
                              image_grid_pinpoints=PINPOINTS_A, tie_word_embeddings=False)
        model = LlavaNextForConditionalGeneration(cfg)
    elif name == "next_llama_bf16":
        cfg = LlavaNextConfig(vision_config=vc, text_config=text_config("llama"), image_token_index=IMAGE_ID,
                              image_token_id=IMAGE_ID, projector_hidden_act="gelu",
                              vision_feature_select_strategy="default", vision_feature_layer=[-3, -1],
                              image_grid_pinpoints=PINPOINTS_B, tie_word_embeddings=False)
        model = LlavaNextForConditionalGeneration(cfg)
    else:
        raise ValueError(name)
    widen_init(model, seed={"llava_llama": 11, "next_mistral": 12, "next_llama_bf16": 13}[name])
    return model.eval()


def image_processor(name, mode):
    """PIL-backend processors (HF resizes with PIL there). Returns (pil_proc, fast_proc or None)."""
    import transformers as T
    kw = dict(size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP})
    if mode == "pad":
        cls_pil = getattr(T, "LlavaImageProcessorPil", None) or T.LlavaImageProcessor
        cls_fast = getattr(T, "LlavaImageProcessorFast", None) or getattr(T, "LlavaImageProcessor")
        kw["do_pad"] = True
    else:
        cls_pil = getattr(T, "LlavaNextImageProcessorPil", None) or T.LlavaNextImageProcessor
        cls_fast = getattr(T, "LlavaNextImageProcessorFast", None) or getattr(T, "LlavaNextImageProcessor")
        kw["image_grid_pinpoints"] = PINPOINTS_A if name == "next_mistral" else PINPOINTS_B
        kw["do_pad"] = False
    pil = cls_pil(**kw)
    try:
        fast = cls_fast(**kw) if cls_fast is not cls_pil else None
    except Exception as e:  # noqa
        log("fast processor unavailable:", e)
        fast = None
    return pil, fast


def formula_count(model, image_sizes):
    """Feature count by LLaVA-NeXT's arithmetic (base crop + unpadded grid + one newline per row)."""
    c = model.config
    side = c.vision_config.image_size // c.vision_config.patch_size
    per_crop = side * side + (1 if c.vision_feature_select_strategy == "full" else 0)
    if image_sizes is None:
        return per_crop
    from transformers.image_processing_utils import select_best_resolution
    h, w = [int(x) for x in image_sizes[0]]
    bh, bw = select_best_resolution((h, w), c.image_grid_pinpoints)
    H, W = bh // c.vision_config.image_size * side, bw // c.vision_config.image_size * side
    if w / h > W / H:
        nh = int(round(h * (W / w), 7)); pad = (H - nh) // 2; H = H - 2 * pad
    else:
        nw = int(round(w * (H / h), 7)); pad = (W - nw) // 2; W = W - 2 * pad
    return per_crop + H * (W + 1)


def feature_count(model, pixel_values, image_sizes):
    """Number of image feature vectors the model computes (the truth to splice)."""
    try:
        n = feature_count_model(model, pixel_values, image_sizes)
    except Exception as e:  # noqa
        log("get_image_features failed, using formula:", str(e)[:200])
        return formula_count(model, image_sizes)
    f = formula_count(model, image_sizes)
    if n != f:
        log(f"NOTE feature count: model {n} formula {f}")
    return n


def feature_count_model(model, pixel_values, image_sizes):
    with torch.no_grad():
        out = model.model.get_image_features(pixel_values=pixel_values, image_sizes=image_sizes) \
            if image_sizes is not None else model.model.get_image_features(pixel_values=pixel_values)
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        out = out.pooler_output
    if isinstance(out, (list, tuple)):
        return sum(int(x.reshape(-1, x.shape[-1]).shape[0]) for x in out)
    return int(out.reshape(-1, out.shape[-1]).shape[0])


def greedy_loop(model, input_ids, pixel_values, image_sizes, n):
    ids = input_ids.clone()
    out = []
    for _ in range(n):
        kw = dict(input_ids=ids, pixel_values=pixel_values)
        if image_sizes is not None:
            kw["image_sizes"] = image_sizes
        with torch.no_grad():
            logits = model(**kw, use_cache=False).logits
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


CASES = {
    "llava_llama": [("china.jpg", "vicuna_v1", "What is shown in this image?"),
                    ("flower_portrait.jpg", "vicuna_v1", "Describe the image."),
                    ("logo.png", "raw", "<image>\nA photo of")],
    "next_mistral": [("china.jpg", "mistral_instruct", "Describe the image."),
                     ("flower_portrait.jpg", "mistral_instruct", "What is in the picture?"),
                     ("china_wide.jpg", "mistral_instruct", "Describe the image."),
                     ("camera.png", "mistral_instruct", "What is this?")],
    "next_llama_bf16": [("chelsea.png", "vicuna_v1", "What animal is this?"),
                        ("china_wide.jpg", "raw", "<image>\nA photo of")],
}


def render(template, user):
    if "<image>" not in user:
        user = "<image>\n" + user
    if template == "raw":
        return user
    if template == "vicuna_v1":
        return VICUNA_SYS + " USER: " + user + " ASSISTANT:"
    if template == "mistral_instruct":
        return "[INST] " + user + " [/INST]"
    raise ValueError(template)


def to_original_layout(hf_dir, out_dir, model):
    """Re-save a LlavaNext (Mistral) checkpoint the way the original LLaVA repo stores it."""
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    lm, vt = {}, {}
    for k, v in sd.items():
        if k.startswith("model.language_model."):
            lm["model." + k[len("model.language_model."):]] = v
        elif k == "lm_head.weight":
            lm[k] = v
        elif k.startswith("model.multi_modal_projector.linear_1."):
            lm["model.mm_projector.0." + k.split(".")[-1]] = v
        elif k.startswith("model.multi_modal_projector.linear_2."):
            lm["model.mm_projector.2." + k.split(".")[-1]] = v
        elif k == "model.image_newline":
            lm["model.image_newline"] = v
        elif k.startswith("model.vision_tower."):
            rest = k[len("model.vision_tower."):]
            # a CLIP folder as CLIPVisionModel saves it: vision_model.*
            vt[rest if rest.startswith("vision_model.") else "vision_model." + rest] = v
        else:
            raise KeyError(k)
    save_file(lm, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    clip_dir = os.path.join(out_dir, "clip")
    os.makedirs(clip_dir, exist_ok=True)
    save_file(vt, os.path.join(clip_dir, "model.safetensors"), metadata={"format": "pt"})
    c = model.config
    vc = c.vision_config.to_dict(); vc["model_type"] = "clip_vision_model"; vc["architectures"] = ["CLIPVisionModel"]
    json.dump(vc, open(os.path.join(clip_dir, "config.json"), "w"), indent=1)
    json.dump({"crop_size": {"height": CROP, "width": CROP}, "size": {"shortest_edge": CROP},
               "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
               "do_center_crop": True, "resample": 3, "image_processor_type": "CLIPImageProcessor"},
              open(os.path.join(clip_dir, "preprocessor_config.json"), "w"), indent=1)
    tc = c.text_config.to_dict()
    orig = {k: tc[k] for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
                                "max_position_embeddings", "bos_token_id", "eos_token_id", "sliding_window"] if k in tc}
    rp = tc.get("rope_parameters") or {}
    orig["rope_theta"] = tc.get("rope_theta", rp.get("rope_theta", 1e6))
    orig.update({"architectures": ["LlavaMistralForCausalLM"], "model_type": "llava_mistral",
                 "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32",
                 "mm_vision_tower": "./clip", "mm_hidden_size": c.vision_config.hidden_size,
                 "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2,
                 "mm_vision_select_feature": "patch", "mm_patch_merge_type": "spatial_unpad",
                 "image_aspect_ratio": "anyres", "image_grid_pinpoints": PINPOINTS_A,
                 "mm_use_im_start_end": False, "mm_use_im_patch_token": False})
    json.dump(orig, open(os.path.join(out_dir, "config.json"), "w"), indent=1)
    shutil.copy(TOK, os.path.join(out_dir, "tokenizer.model"))
    json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
               "legacy": True, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
              open(os.path.join(out_dir, "tokenizer_config.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "parity"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(8)
    os.makedirs(args.out, exist_ok=True)
    manifest = {"transformers": transformers.__version__, "torch": torch.__version__,
                "created": time.strftime("%Y-%m-%d"), "cases": [], "tokenizer": []}

    # --- tokenizer ids in both legacy modes
    for legacy in (True, False):
        tok = make_tokenizer(os.path.join("/tmp", f"tok_legacy_{legacy}"), legacy)
        log("tokenizer class", type(tok).__name__, "legacy", legacy)
        for t in TOKENIZER_TEXTS:
            ids = tok(t, add_special_tokens=True)["input_ids"]
            manifest["tokenizer"].append({"text": t, "legacy": legacy, "ids": ids,
                                          "decoded": tok.decode(ids, skip_special_tokens=True)})

    for name, cases in CASES.items():
        log("== building", name)
        model = build(name)
        mdir = os.path.join(args.out, name)
        if os.path.exists(mdir):
            shutil.rmtree(mdir)
        if name == "next_llama_bf16":
            model.to(torch.bfloat16).save_pretrained(mdir, max_shard_size="300KB")
            # HF reference: the bf16 weights read back in fp32 (what stic does on CPU). Reloading
            # (not model.float()) keeps buffers such as RoPE's inv_freq exact.
            model = LlavaNextForConditionalGeneration.from_pretrained(mdir, dtype=torch.float32)
        else:
            model.save_pretrained(mdir)
        tok = make_tokenizer(mdir, legacy=False)
        tok.save_pretrained(mdir)
        mode = "pad" if name == "llava_llama" else "anyres"
        pil_proc, fast_proc = image_processor(name, mode)
        pil_proc.save_pretrained(mdir)
        keys = sorted(load_file(os.path.join(mdir, "model.safetensors")).keys()) if os.path.exists(
            os.path.join(mdir, "model.safetensors")) else json.load(open(os.path.join(mdir, "model.safetensors.index.json")))["weight_map"].keys()
        log("saved keys (first 8):", list(keys)[:8])
        model = model.eval()
        for ci, (img, template, user) in enumerate(cases):
            pil = Image.open(os.path.join(IMG, img)).convert("RGB")
            px = pil_proc(images=[pil], return_tensors="pt")
            pixel_values = px["pixel_values"].float()
            image_sizes = px.get("image_sizes")
            fast_diff = None
            if fast_proc is not None:
                try:
                    pf = fast_proc(images=[pil], return_tensors="pt")["pixel_values"].float()
                    fast_diff = float((pf - pixel_values).abs().max()) if pf.shape == pixel_values.shape else f"shape {tuple(pf.shape)}"
                except Exception as e:  # noqa
                    fast_diff = "error: " + str(e)[:100]
            prompt = render(template, user)
            ids = tok(prompt, add_special_tokens=True)["input_ids"]
            nfeat = feature_count(model, pixel_values, image_sizes if mode == "anyres" else None)
            assert ids.count(IMAGE_ID) == 1, ids
            pos = ids.index(IMAGE_ID)
            expanded = ids[:pos] + [IMAGE_ID] * nfeat + ids[pos + 1:]
            input_ids = torch.tensor([expanded])
            kw = dict(input_ids=input_ids, pixel_values=pixel_values)
            if mode == "anyres":
                kw["image_sizes"] = image_sizes
            with torch.no_grad():
                logits = model(**kw, use_cache=False).logits[0].float()
            greedy = greedy_loop(model, input_ids, pixel_values, image_sizes if mode == "anyres" else None, 16)
            with torch.no_grad():
                gen = model.generate(**kw, do_sample=False, max_new_tokens=16, min_new_tokens=0,
                                     pad_token_id=0)[0, input_ids.shape[1]:].tolist()
            case = f"{name}__{ci}"
            tensors = {"pixel_values": pixel_values.contiguous(), "input_ids": input_ids.to(torch.int64),
                       "logits": logits.contiguous(), "greedy": torch.tensor(greedy, dtype=torch.int64)}
            if image_sizes is not None:
                tensors["image_sizes"] = torch.as_tensor(image_sizes).to(torch.int64).reshape(-1, 2)
            save_file(tensors, os.path.join(args.out, case + ".safetensors"))
            top2 = logits[-1].topk(2).values.tolist()
            manifest["cases"].append({"case": case, "model": name, "image": img, "template": template,
                                      "user": user, "prompt": prompt, "prompt_ids": ids,
                                      "num_image_tokens": nfeat, "num_input_tokens": len(expanded),
                                      "mode": mode, "greedy": greedy, "generate": gen,
                                      "fast_processor_max_abs_diff": fast_diff,
                                      "last_top2_gap": top2[0] - top2[1]})
            log(case, img, "feat", nfeat, "greedy", greedy, "gen", gen, "fast_diff", fast_diff)
        if name == "next_mistral":
            to_original_layout(mdir, os.path.join(args.out, "orig_mistral"), model)
    json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
    log("done")


if __name__ == "__main__":
    main()
