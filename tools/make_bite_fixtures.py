#!/usr/bin/env python3
"""Fixtures for paths the first parity set does not reach, made with HF transformers + PEFT on CPU
in fp32 (run on the GPU machine: transformers 5.x, peft, torch, PIL):
    python3 tools/make_bite_fixtures.py --out OUT
    cp -r OUT/parity/* tests/fixtures/parity/ && cp OUT/images/* tests/fixtures/images/ \
      && mkdir -p tests/fixtures/train_step && cp -r OUT/train_step/* tests/fixtures/train_step/

Parity checkpoints and cases (appended to tests/fixtures/parity/manifest.json, so every parity
and engine test runs them; tools/make_parity_fixtures.py has the conventions):
  swa_mistral      LLaVA-1.5 (pad) with a Mistral decoder whose sliding window (32) is shorter
                   than every prompt: HF's greedy tokens (full forward each step) and generate()
  llava_full_bias  LLaVA-1.5 with vision_feature_select_strategy "full" (CLS kept: 65 features),
                   attention and MLP biases in the decoder, a projector without biases
  next_mistral     one more case: an image whose size makes HF's unpad rule int(round(x, 7))
                   and the original LLaVA's int(x) give different feature counts
Extra references (tests/fixtures/parity/manifest_extra.json):
  unpad_int        next_mistral's logits for that image with the original LLaVA's int(x) unpad
                   (HF's unpad_image patched): what orig_mistral must give
  orig_llama_linear an original-layout checkpoint (llava_llama, mm_projector_type "linear",
                   mm_vision_select_feature "cls_patch", pad, separate CLIP folder) and HF's
                   logits for it (LlavaForConditionalGeneration with its projector replaced by
                   one nn.Linear, strategy "full")
Training step (tests/fixtures/train_step):
  start_llava_llama/   a PEFT adapter (non-zero A and B, lora_dropout 0.1, text decoder only)
  step_llava_llama.safetensors  two micro-batches of one sample each (the SFT fixture's samples,
                   tests/fixtures/peft/sft_data.json) with gradient accumulation 2: each
                   micro-batch's loss, the LoRA dropout keep-masks PEFT drew (in call order, per
                   micro-batch), the accumulated gradients (unclipped and clipped to norm 1) and
                   the LoRA weights after one torch.optim.AdamW step (lr 1e-3, weight decay 0.01)
"""
import argparse, json, os, shutil, sys, time, traceback

import torch
from PIL import Image
from safetensors.torch import save_file, load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_parity_fixtures as mpf  # noqa: E402

import transformers  # noqa: E402
from transformers import (LlavaConfig, LlavaForConditionalGeneration, LlavaNextForConditionalGeneration,
                          LlamaConfig, MistralConfig)  # noqa: E402

PARITY = os.path.join(ROOT, "tests", "fixtures", "parity")
PEFT_FIX = os.path.join(ROOT, "tests", "fixtures", "peft")
DPO_FIX = os.path.join(ROOT, "tests", "fixtures", "dpo")
SWA = 32
log = mpf.log


# ---------------------------------------------------------------- checkpoints
def text_cfg(kind, **extra):
    common = dict(vocab_size=mpf.VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                  pad_token_id=None, tie_word_embeddings=False)
    common.update(extra)
    if kind == "mistral":
        return MistralConfig(num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6, **common)
    return LlamaConfig(num_attention_heads=4, num_key_value_heads=4, rope_theta=10000.0, **common)


def build(name):
    vc = mpf.vision_config()
    if name == "swa_mistral":
        cfg = LlavaConfig(vision_config=vc, text_config=text_cfg("mistral", sliding_window=SWA),
                          image_token_index=mpf.IMAGE_ID, image_token_id=mpf.IMAGE_ID, projector_hidden_act="gelu",
                          vision_feature_select_strategy="default", vision_feature_layer=-2, tie_word_embeddings=False)
        seed = 21
    elif name == "llava_full_bias":
        cfg = LlavaConfig(vision_config=vc, text_config=text_cfg("llama", attention_bias=True, mlp_bias=True),
                          image_token_index=mpf.IMAGE_ID, image_token_id=mpf.IMAGE_ID, projector_hidden_act="gelu",
                          vision_feature_select_strategy="full", vision_feature_layer=-1,
                          multimodal_projector_bias=False, tie_word_embeddings=False)
        seed = 22
    elif name == "llama_full_linear":  # the HF twin of orig_llama_linear
        cfg = LlavaConfig(vision_config=vc, text_config=text_cfg("llama"), image_token_index=mpf.IMAGE_ID,
                          image_token_id=mpf.IMAGE_ID, projector_hidden_act="gelu",
                          vision_feature_select_strategy="full", vision_feature_layer=-2, tie_word_embeddings=False)
        seed = 23
    else:
        raise ValueError(name)
    model = LlavaForConditionalGeneration(cfg)
    mpf.widen_init(model, seed=seed)
    return model.eval()


CASES = {
    "swa_mistral": [("china.jpg", "vicuna_v1", "Describe the image."),
                    ("flower_portrait.jpg", "mistral_instruct", "What is in the picture?")],
    "llava_full_bias": [("chelsea.png", "vicuna_v1", "What animal is this?"),
                        ("china_wide.jpg", "raw", "<image>\nA photo of")],
}


def pad_processor():
    import transformers as T
    cls = getattr(T, "LlavaImageProcessorPil", None) or T.LlavaImageProcessor
    return cls(size={"shortest_edge": mpf.CROP}, crop_size={"height": mpf.CROP, "width": mpf.CROP}, do_pad=True)


def llava_chunk_ids(tok, prompt):
    """The original LLaVA's tokenizer_image_token: each text chunk around <image> tokenized on its
    own (so the one after the image starts with a "▁" piece, as the slow legacy tokenizer gives),
    the BOS of every chunk after the first dropped."""
    chunks = prompt.split("<image>")
    ids = tok(chunks[0], add_special_tokens=True)["input_ids"]
    for c in chunks[1:]:
        ids += [mpf.IMAGE_ID] + tok(c, add_special_tokens=True)["input_ids"][1:]
    return ids


def run_case(model, tok, proc, mode, img_path, template, user, with_generate=True, original_rule=False):
    pil = Image.open(img_path).convert("RGB")
    px = proc(images=[pil], return_tensors="pt")
    pixel_values = px["pixel_values"].float()
    image_sizes = px.get("image_sizes") if mode == "anyres" else None
    prompt = mpf.render(template, user)
    ids = llava_chunk_ids(tok, prompt) if original_rule else tok(prompt, add_special_tokens=True)["input_ids"]
    nfeat = mpf.feature_count(model, pixel_values, image_sizes)
    assert ids.count(mpf.IMAGE_ID) == 1, ids
    pos = ids.index(mpf.IMAGE_ID)
    expanded = ids[:pos] + [mpf.IMAGE_ID] * nfeat + ids[pos + 1:]
    input_ids = torch.tensor([expanded])
    kw = dict(input_ids=input_ids, pixel_values=pixel_values)
    if image_sizes is not None:
        kw["image_sizes"] = image_sizes
    with torch.no_grad():
        logits = model(**kw, use_cache=False).logits[0].float()
    greedy = mpf.greedy_loop(model, input_ids, pixel_values, image_sizes, 16)
    gen = None
    if with_generate:
        with torch.no_grad():
            gen = model.generate(**kw, do_sample=False, max_new_tokens=16, min_new_tokens=0,
                                 pad_token_id=0)[0, input_ids.shape[1]:].tolist()
    tensors = {"pixel_values": pixel_values.contiguous(), "input_ids": input_ids.to(torch.int64),
               "logits": logits.contiguous(), "greedy": torch.tensor(greedy, dtype=torch.int64)}
    if image_sizes is not None:
        tensors["image_sizes"] = torch.as_tensor(image_sizes).to(torch.int64).reshape(-1, 2)
    top2 = logits[-1].topk(2).values.tolist()
    entry = {"template": template, "user": user, "prompt": prompt, "prompt_ids": ids, "num_image_tokens": nfeat,
             "num_input_tokens": len(expanded), "mode": mode, "greedy": greedy, "generate": gen,
             "last_top2_gap": top2[0] - top2[1]}
    return tensors, entry


def make_models(out, manifest, extra):
    pdir = os.path.join(out, "parity")
    for name, cases in CASES.items():
        log("== building", name)
        model = build(name)
        mdir = os.path.join(pdir, name)
        shutil.rmtree(mdir, ignore_errors=True)
        model.save_pretrained(mdir)
        tok = mpf.make_tokenizer(mdir, legacy=False)
        tok.save_pretrained(mdir)
        proc = pad_processor()
        proc.save_pretrained(mdir)
        manifest["cases"] = [c for c in manifest["cases"] if c["model"] != name]
        for ci, (img, template, user) in enumerate(cases):
            t, e = run_case(model, tok, proc, "pad", os.path.join(mpf.IMG, img), template, user)
            case = f"{name}__{ci}"
            save_file(t, os.path.join(pdir, case + ".safetensors"))
            e.update({"case": case, "model": name, "image": img})
            manifest["cases"].append(e)
            log(case, "feat", e["num_image_tokens"], "tokens", e["num_input_tokens"], "greedy", e["greedy"],
                "generate", e["generate"])
            if e["generate"] != e["greedy"]:
                extra.setdefault("notes", []).append(f"{case}: generate() differs from the full-forward greedy loop")
        extra.setdefault("models", {})[name] = {"sliding_window": SWA} if name == "swa_mistral" else {
            "vision_feature_select_strategy": "full", "attention_bias": True, "mlp_bias": True,
            "multimodal_projector_bias": False}


# ---------------------------------------------------------------- unpad: round(x, 7) vs int(x)
def counts_for(h, w, pinpoints, crop=mpf.CROP, side=8):
    from transformers.image_processing_utils import select_best_resolution
    bh, bw = select_best_resolution((h, w), pinpoints)
    H, W = bh // crop * side, bw // crop * side
    res = {}
    for rule in ("round7", "int"):
        cur_h, cur_w = H, W
        if w / h > W / H:
            x = h * (W / w)
            nh = int(round(x, 7)) if rule == "round7" else int(x)
            pad = (H - nh) // 2
            cur_h = H - 2 * pad
        else:
            x = w * (H / h)
            nw = int(round(x, 7)) if rule == "round7" else int(x)
            pad = (W - nw) // 2
            cur_w = W - 2 * pad
        res[rule] = side * side + cur_h * (cur_w + 1)
    return res


def unpad_int(tensor, original_size):
    """The original LLaVA's unpad_image (llava/model/llava_arch.py): int(x), no rounding."""
    if not isinstance(original_size, (list, tuple)):
        original_size = original_size.tolist()
    original_height, original_width = [int(v) for v in original_size]
    current_height, current_width = tensor.shape[1:]
    if original_width / original_height > current_width / current_height:
        new_height = int(original_height * (current_width / original_width))
        padding = (current_height - new_height) // 2
        return tensor[:, padding:current_height - padding, :]
    new_width = int(original_width * (current_height / original_height))
    padding = (current_width - new_width) // 2
    return tensor[:, :, padding:current_width - padding]


def make_unpad(out, manifest, extra):
    # h * (W / w) is an integer on paper but lands just below it in binary (e.g. 94 * (24 / 752)):
    # the smallest such sizes for PINPOINTS_A up to 1600 px (found by the same counts_for)
    found = None
    for h, w in [(94, 752), (343, 1176), (147, 1176)]:
        c = counts_for(h, w, mpf.PINPOINTS_A)
        if c["round7"] != c["int"]:
            found = (h, w, c)
            break
    assert found, "no separating size"
    h, w, c = found
    log("unpad probe size", (h, w), c)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    img_name = "unpad_probe.png"
    img_path = os.path.join(out, "images", img_name)
    Image.open(os.path.join(mpf.IMG, "china.jpg")).convert("RGB").resize((w, h), Image.BICUBIC).save(img_path)
    model = LlavaNextForConditionalGeneration.from_pretrained(os.path.join(PARITY, "next_mistral"), dtype=torch.float32).eval()
    from transformers import AutoTokenizer  # the folder's own tokenizer.json, as the other next_mistral cases
    tok = AutoTokenizer.from_pretrained(os.path.join(PARITY, "next_mistral"))
    proc, _ = mpf.image_processor("next_mistral", "anyres")
    t, e = run_case(model, tok, proc, "anyres", img_path, "mistral_instruct", "Describe the image.")
    case = "next_mistral__4"
    manifest["cases"] = [x for x in manifest["cases"] if x["case"] != case]
    save_file(t, os.path.join(out, "parity", case + ".safetensors"))
    e.update({"case": case, "model": "next_mistral", "image": img_name})
    manifest["cases"].append(e)
    # the original LLaVA's rule on the same weights and inputs
    import transformers.models.llava_next.modeling_llava_next as M
    keep = M.unpad_image
    M.unpad_image = unpad_int
    try:
        pv, isz = t["pixel_values"], t["image_sizes"]
        nfeat = mpf.feature_count_model(model, pv, isz)
        ids = e["prompt_ids"]
        pos = ids.index(mpf.IMAGE_ID)
        expanded = torch.tensor([ids[:pos] + [mpf.IMAGE_ID] * nfeat + ids[pos + 1:]])
        with torch.no_grad():
            logits = model(input_ids=expanded, pixel_values=pv, image_sizes=isz, use_cache=False).logits[0].float()
    finally:
        M.unpad_image = keep
    save_file({"input_ids": expanded, "logits": logits.contiguous()}, os.path.join(out, "parity", "unpad_int.safetensors"))
    extra["unpad"] = {"image": img_name, "size_hw": [h, w], "case": case, "hf_round7_features": e["num_image_tokens"],
                      "int_features": nfeat, "formula": c}
    log("unpad: HF", e["num_image_tokens"], "int", nfeat)
    assert nfeat != e["num_image_tokens"], "the probe does not separate the rules"


# ---------------------------------------------------------------- original layout, linear projector
def make_orig_linear(out, manifest, extra):
    model = build("llama_full_linear")
    g = torch.Generator().manual_seed(24)
    lin = torch.nn.Linear(64, 64, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(64, 64, generator=g) * mpf.STD)
        lin.bias.copy_(0.05 * torch.randn(64, generator=g))
    model.model.multi_modal_projector = lin
    model.eval()
    odir = os.path.join(out, "parity", "orig_llama_linear")
    shutil.rmtree(odir, ignore_errors=True)
    os.makedirs(os.path.join(odir, "clip"), exist_ok=True)
    lm, vt = {}, {}
    for k, v in model.state_dict().items():
        v = v.detach().clone().contiguous()
        if k.startswith("model.language_model."):
            lm["model." + k[len("model.language_model."):]] = v
        elif k == "lm_head.weight":
            lm[k] = v
        elif k.startswith("model.multi_modal_projector."):
            lm["model.mm_projector." + k.split(".")[-1]] = v
        elif k.startswith("model.vision_tower."):
            rest = k[len("model.vision_tower."):]
            vt[rest if rest.startswith("vision_model.") else "vision_model." + rest] = v
        else:
            raise KeyError(k)
    save_file(lm, os.path.join(odir, "model.safetensors"), metadata={"format": "pt"})
    save_file(vt, os.path.join(odir, "clip", "model.safetensors"), metadata={"format": "pt"})
    c = model.config
    vc = c.vision_config.to_dict(); vc["model_type"] = "clip_vision_model"; vc["architectures"] = ["CLIPVisionModel"]
    json.dump(vc, open(os.path.join(odir, "clip", "config.json"), "w"), indent=1)
    json.dump({"crop_size": {"height": mpf.CROP, "width": mpf.CROP}, "size": {"shortest_edge": mpf.CROP},
               "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
               "do_center_crop": True, "resample": 3, "image_processor_type": "CLIPImageProcessor"},
              open(os.path.join(odir, "clip", "preprocessor_config.json"), "w"), indent=1)
    tc = c.text_config.to_dict()
    orig = {k: tc[k] for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
                                "max_position_embeddings", "bos_token_id", "eos_token_id"] if k in tc}
    rp = tc.get("rope_parameters") or {}
    orig["rope_theta"] = tc.get("rope_theta", rp.get("rope_theta", 10000.0))
    orig.update({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava_llama", "hidden_act": "silu",
                 "tie_word_embeddings": False, "torch_dtype": "float32", "mm_vision_tower": "./clip",
                 "mm_hidden_size": 64, "mm_projector_type": "linear", "mm_vision_select_layer": -2,
                 "mm_vision_select_feature": "cls_patch", "mm_patch_merge_type": "flat",
                 "image_aspect_ratio": "pad", "mm_use_im_start_end": False, "mm_use_im_patch_token": False})
    json.dump(orig, open(os.path.join(odir, "config.json"), "w"), indent=1)
    shutil.copy(mpf.TOK, os.path.join(odir, "tokenizer.model"))
    json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
               "legacy": True, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
              open(os.path.join(odir, "tokenizer_config.json"), "w"), indent=1)
    # the prompt ids as the original LLaVA code makes them (tokenizer_image_token), which stic's
    # chat path gives for this folder (its tokenizer_config says legacy, as the original checkpoints')
    tok = mpf.make_tokenizer(os.path.join("/tmp", "bite_tok_ol"), legacy=False)
    cases = []
    for ci, (img, template, user) in enumerate([("rocket.jpg", "vicuna_v1", "What is in the picture?"),
                                                ("logo.png", "raw", "<image>\nA photo of")]):
        t, e = run_case(model, tok, pad_processor(), "pad", os.path.join(mpf.IMG, img), template, user,
                        with_generate=False, original_rule=True)
        name = f"orig_llama_linear__{ci}"
        save_file(t, os.path.join(out, "parity", name + ".safetensors"))
        e.update({"case": name, "image": img})
        cases.append(e)
        log(name, "feat", e["num_image_tokens"], "greedy", e["greedy"])
    extra["orig_llama_linear"] = {"cases": cases, "projector": "linear", "select": "cls_patch (full)", "layer": -2}


# ---------------------------------------------------------------- one SFT step with accumulation and dropout
TEXT_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
P_DROP = 0.1


class RecordingDropout(torch.nn.Module):
    """nn.Dropout(p) as ATen computes it on CPU (x * (bernoulli(1 - p) / (1 - p))), with the keep-mask
    of every call appended to `masks` in call order."""

    def __init__(self, p, masks, gen):
        super().__init__()
        self.p, self.masks, self.gen = p, masks, gen

    def forward(self, x):
        if not self.training:
            return x
        keep = torch.rand(x.shape, generator=self.gen) >= self.p
        self.masks.append(keep.clone())
        return x * keep.to(x.dtype).div_(1 - self.p)


def make_train_step(out, manifest, extra):
    from peft import LoraConfig, get_peft_model
    name, template = "llava_llama", "vicuna_v1"
    sdir = os.path.join(out, "train_step")
    os.makedirs(sdir, exist_ok=True)
    base = LlavaForConditionalGeneration.from_pretrained(os.path.join(PARITY, name), dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=P_DROP, target_modules=TEXT_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    start = load_file(os.path.join(DPO_FIX, f"start_{name}", "adapter_model.safetensors"))
    named = dict(model.named_parameters())
    n_set = 0
    with torch.no_grad():
        for k, v in start.items():  # "base_model.model.X.lora_A.weight" -> "...lora_A.default.weight"
            pk = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
            named[pk].copy_(v)
            n_set += 1
    assert n_set == sum(1 for n, p in model.named_parameters() if p.requires_grad), n_set
    adir = os.path.join(sdir, f"start_{name}")
    shutil.rmtree(adir, ignore_errors=True)
    model.save_pretrained(adir)
    masks = {0: [], 1: []}
    gen = torch.Generator().manual_seed(31)
    rec = []
    for mname, mod in model.named_modules():
        if hasattr(mod, "lora_dropout") and "default" in mod.lora_dropout:
            d = RecordingDropout(P_DROP, None, gen)
            mod.lora_dropout["default"] = d
            rec.append(d)
    sft = load_file(os.path.join(PEFT_FIX, f"sft_{name}.safetensors"))
    model.train()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    t = {}
    losses = []
    for i in (0, 1):
        for d in rec:
            d.masks = masks[i]
        n = int(sft["attention_mask"][i].sum())
        ids = sft["input_ids"][i:i + 1, :n]
        lab = sft["labels"][i:i + 1, :n]
        out_ = model(input_ids=ids, pixel_values=sft[f"pixel_values_{i}"], labels=lab, use_cache=False)
        losses.append(float(out_.loss))
        (out_.loss / 2).backward()
        for j, m in enumerate(masks[i]):
            t[f"mask.{i}.{j:03d}"] = m.to(torch.uint8).contiguous()
    for n, p in params:
        t["grad." + n.replace(".default", "")] = p.grad.detach().clone().contiguous()
    gnorm = float(torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0))
    for n, p in params:
        t["clipped." + n.replace(".default", "")] = p.grad.detach().clone().contiguous()
    opt = torch.optim.AdamW([p for _, p in params], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    opt.step()
    for n, p in params:
        t["step." + n.replace(".default", "")] = p.detach().clone().contiguous()
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file(t, os.path.join(sdir, f"step_{name}.safetensors"))
    info = {"transformers": transformers.__version__, "torch": torch.__version__, "created": time.strftime("%Y-%m-%d"),
            "model": name, "template": template, "lora_dropout": P_DROP, "grad_accum": 2, "micro_batch": 1,
            "order": [0, 1], "losses": losses, "grad_norm_before_clip": gnorm, "max_grad_norm": 1.0,
            "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
            "masks_per_micro_batch": [len(masks[0]), len(masks[1])],
            "mask_shapes_0": [list(m.shape) for m in masks[0]][:14]}
    import peft
    info["peft"] = peft.__version__
    json.dump(info, open(os.path.join(sdir, "manifest.json"), "w"), indent=1)
    log("train step: losses", losses, "grad norm", gnorm, "masks", info["masks_per_micro_batch"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", default=None,
                    help="steps to rerun (make_models make_unpad make_orig_linear make_train_step); the other "
                         "entries of manifest_extra.json are kept")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(8)
    os.makedirs(os.path.join(args.out, "parity"), exist_ok=True)
    manifest = json.load(open(os.path.join(PARITY, "manifest.json")))
    extra = {}
    if args.only:
        extra = json.load(open(os.path.join(PARITY, "manifest_extra.json")))
    extra.update({"transformers": transformers.__version__, "torch": torch.__version__, "created": time.strftime("%Y-%m-%d")})
    errors = []
    for step in (make_models, make_unpad, make_orig_linear, make_train_step):
        if args.only and step.__name__ not in args.only:
            continue
        try:
            step(args.out, manifest, extra)
        except Exception as e:  # one device run has to bring back everything it can
            traceback.print_exc()
            errors.append(f"{step.__name__}: {type(e).__name__}: {e}")
        json.dump(manifest, open(os.path.join(args.out, "parity", "manifest.json"), "w"), indent=1)
        extra["errors"] = errors
        json.dump(extra, open(os.path.join(args.out, "parity", "manifest_extra.json"), "w"), indent=1)
    log("done; errors:", errors)


if __name__ == "__main__":
    main()
