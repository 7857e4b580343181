#!/usr/bin/env python3
"""PEFT LoRA and SFT-loss fixtures for stic, made with HF transformers + PEFT on CPU in fp32.

Run on the GPU machine (it has transformers 5.x, peft, torch):
    python3 tools/make_peft_fixtures.py --out OUT && cp -r OUT/* tests/fixtures/peft/
Inputs: the parity checkpoints (tests/fixtures/parity, tools/make_parity_fixtures.py) and the
adapters stic saved (tests/fixtures/peft/stic_saved_*, written by the C++ test
LoraFixture.WriteSticSaved with STIC_WRITE_PEFT_FIXTURE=1).
Outputs (small, committed):
  hf_<model>/            a PEFT adapter on the parity checkpoint: LoRA on every decoder linear
                         (non-zero random A and B) and, as the released STIC adapters have,
                         untrained LoRA (B = 0) on CLIP q/k/v (PEFT's suffix targets reach them)
  released_style/        hf_next_mistral renamed to the original-LLaVA layout keys
                         (base_model.model.model.layers..., model.vision_tower.vision_tower...)
  logits_<name>.safetensors  PEFT's logits (last 32 positions) for parity case <model>__0
  sft_<model>.safetensors    a 2-sample multi-turn batch: HF's expanded input_ids, labels
                         (assistant tokens only, by character spans of the rendered template),
                         attention_mask, pixel values, image sizes, and HF's loss
  sft_data.json          the LLaVA-format records of that batch
  manifest.json          versions, key lists, loss values, checks
"""
import argparse, json, os, sys, time

import torch
from safetensors.torch import save_file, load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_parity_fixtures as mpf  # noqa: E402

import transformers  # noqa: E402
import peft  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from PIL import Image  # noqa: E402

PARITY = os.path.join(ROOT, "tests", "fixtures", "parity")
PEFT_FIX = os.path.join(ROOT, "tests", "fixtures", "peft")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODELS = {"next_mistral": transformers.LlavaNextForConditionalGeneration,
          "llava_llama": transformers.LlavaForConditionalGeneration}
KEEP = 32


def log(*a):
    print(*a, flush=True)


def load_base(name):
    return MODELS[name].from_pretrained(os.path.join(PARITY, name), dtype=torch.float32).eval()


def case_inputs(name):
    f = load_file(os.path.join(PARITY, f"{name}__0.safetensors"))
    kw = {"input_ids": f["input_ids"], "pixel_values": f["pixel_values"]}
    if "image_sizes" in f:
        kw["image_sizes"] = f["image_sizes"]
    return kw


def logits_of(model, name):
    with torch.no_grad():
        return model(**case_inputs(name), use_cache=False).logits[0, -KEEP:].float().contiguous()


def lora_modules(model):
    return {n: m for n, m in model.named_modules() if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})}


def make_hf_adapter(name, out, manifest):
    base = load_base(name)
    rslora = name == "llava_llama"
    cfg = LoraConfig(r=4, lora_alpha=8 if not rslora else 6, lora_dropout=0.0, target_modules=TARGETS,
                     use_rslora=rslora, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(1234)
    vision, text = 0, 0
    with torch.no_grad():
        for n, m in lora_modules(model).items():
            a, b = m.lora_A["default"].weight, m.lora_B["default"].weight
            a.copy_(torch.randn(a.shape, generator=g) * 0.2)
            if "vision" in n:
                b.zero_()  # untrained, as in the released STIC adapters
                vision += 1
            else:
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
                text += 1
    model.eval()
    d = os.path.join(out, f"hf_{name}")
    model.save_pretrained(d)
    keys = sorted(load_file(os.path.join(d, "adapter_model.safetensors")).keys())
    lg = logits_of(model, name)
    with model.disable_adapter():
        base_lg = logits_of(model, name)
    save_file({"logits": lg, "base_logits": base_lg}, os.path.join(out, f"logits_hf_{name}.safetensors"))
    manifest["hf_adapters"][name] = {"keys_first": keys[:6], "n_keys": len(keys), "vision_modules": vision,
                                     "text_modules": text, "rslora": rslora,
                                     "adapter_vs_base_rel": float((lg - base_lg).norm() / base_lg.norm())}
    log(name, "adapter keys", len(keys), keys[:3], "vision", vision, "text", text)
    return d, keys


def make_released_style(hf_dir, keys, out, manifest):
    """hf_next_mistral with the original LLaVA layout's keys (as the released STIC adapters)."""
    sd = load_file(os.path.join(hf_dir, "adapter_model.safetensors"))
    new = {}
    for k, v in sd.items():
        n = k
        for a, b in [("base_model.model.model.language_model.", "base_model.model.model."),
                     ("base_model.model.language_model.model.", "base_model.model.model.")]:
            n = n.replace(a, b)
        for a in ["base_model.model.model.vision_tower.", "base_model.model.vision_tower."]:
            if n.startswith(a):
                rest = n[len(a):]
                if not rest.startswith("vision_model."):
                    rest = "vision_model." + rest
                n = "base_model.model.model.vision_tower.vision_tower." + rest
        new[n] = v.contiguous()
    d = os.path.join(out, "released_style")
    os.makedirs(d, exist_ok=True)
    save_file(new, os.path.join(d, "adapter_model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(hf_dir, "adapter_config.json")))
    cfg["base_model_name_or_path"] = "liuhaotian/llava-v1.6-mistral-7b (tiny stand-in: parity/orig_mistral)"
    json.dump(cfg, open(os.path.join(d, "adapter_config.json"), "w"), indent=2)
    manifest["released_style_keys_first"] = sorted(new.keys())[:4]


def check_stic_saved(name, sub, out, manifest):
    d = os.path.join(PEFT_FIX, sub)
    if not os.path.exists(os.path.join(d, "adapter_model.safetensors")):
        manifest["stic_saved"][sub] = "missing"
        log("no", d)
        return
    base = load_base(name)
    model = PeftModel.from_pretrained(base, d).eval()
    sd = load_file(os.path.join(d, "adapter_model.safetensors"))
    # every saved tensor must have landed in the model: compare with the PEFT state dict
    from peft.utils import get_peft_model_state_dict
    got = get_peft_model_state_dict(model)
    missing = sorted(set(sd) - set(got))
    equal = all(torch.equal(sd[k], got[k]) for k in sd if k in got)
    extra = sorted(set(got) - set(sd))
    lg = logits_of(model, name)
    with model.disable_adapter():
        base_lg = logits_of(model, name)
    save_file({"logits": lg}, os.path.join(out, f"logits_{sub}.safetensors"))
    manifest["stic_saved"][sub] = {"saved_keys_not_in_model": missing[:5], "n_not_in_model": len(missing),
                                   "model_keys_not_saved": extra[:5], "n_model_keys_not_saved": len(extra),
                                   "loaded_tensors_equal": bool(equal),
                                   "adapter_vs_base_rel": float((lg - base_lg).norm() / base_lg.norm())}
    log(sub, manifest["stic_saved"][sub])


# ---------------------------------------------------------------- SFT batch
SFT_RECORDS = [
    {"id": "a", "image": "china.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is shown in this image?"},
        {"from": "gpt", "value": "A large building with a red roof."},
        {"from": "human", "value": "What color is the sky?"},
        {"from": "gpt", "value": "The sky is blue and clear."}]},
    {"id": "b", "image": "flower_portrait.jpg", "conversations": [
        {"from": "human", "value": "Describe the image.\n<image>"},
        {"from": "gpt", "value": "A pink flower, seen up close."},
        {"from": "human", "value": "Is it daytime?"},
        {"from": "gpt", "value": "Yes."}]},
]


def render_with_spans(template, turns):
    """LLaVA's conversation.py rendering; returns text and the answer character spans."""
    spans = []
    if template == "vicuna_v1":
        ret = mpf.VICUNA_SYS + " "
        for i, (role, msg) in enumerate(turns):
            if i % 2 == 0:
                ret += "USER: " + msg + " "
            else:
                ret += "ASSISTANT:"
                b = len(ret)
                ret += " " + msg + "</s>"
                spans.append((b, len(ret)))
        return ret, spans
    assert template == "mistral_instruct"
    ret = ""
    for i, (role, msg) in enumerate(turns):
        if i % 2 == 0:
            ret += "[INST] " + msg + " [/INST]"
        else:
            b = len(ret)
            ret += " " + msg + " </s>"
            spans.append((b, len(ret)))
    return ret, spans


def llava_arith_labels(tok, template, text, ids):
    """LLaVA's preprocess_v1 / preprocess_llama_2 length arithmetic (for the record)."""
    sep = " ASSISTANT: " if template == "vicuna_v1" else "[/INST] "
    labels = list(ids)
    cur = 1
    labels[:1] = [-100]
    for i, rou in enumerate(text.split("</s>")):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        rl = len(tok(rou).input_ids)
        il = len(tok(parts[0]).input_ids) - 2
        if template == "vicuna_v1" and i != 0 and not getattr(tok, "legacy", True):
            rl -= 1
            il -= 1
        labels[cur:cur + il] = [-100] * il
        cur += rl
    labels[cur:] = [-100] * (len(labels) - cur)
    return labels, cur == len(ids)


def make_sft(name, template, out, manifest):
    model = load_base(name)
    tok = transformers.AutoTokenizer.from_pretrained(os.path.join(PARITY, name))
    mode = "pad" if name == "llava_llama" else "anyres"
    proc, _ = mpf.image_processor(name, mode)
    rows, pix, sizes = [], [], []
    info = []
    for r in SFT_RECORDS:
        turns = []
        for c in r["conversations"]:
            v = c["value"]
            if "<image>" in v:  # LLaVA's preprocess_multimodal
                v = "<image>\n" + v.replace("<image>", "").strip()
            turns.append((c["from"], v))
        text, spans = render_with_spans(template, turns)
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=True)
        ids, offs = enc["input_ids"], enc["offset_mapping"]
        labels = []
        for t, (s, e) in zip(ids, offs):
            lab = -100
            if e > s or (s == e and s > 0):
                if any(b <= s < en for b, en in spans):
                    lab = t
            labels.append(lab)
        if ids[0] == tok.bos_token_id:
            labels[0] = -100
        arith, arith_ok = llava_arith_labels(tok, template, text, ids)
        pil = Image.open(os.path.join(mpf.IMG, r["image"])).convert("RGB")
        px = proc(images=[pil], return_tensors="pt")
        pv = px["pixel_values"].float()
        isz = px.get("image_sizes")
        nfeat = mpf.feature_count(model, pv, isz if mode == "anyres" else None)
        p = ids.index(mpf.IMAGE_ID)
        ids_x = ids[:p] + [mpf.IMAGE_ID] * nfeat + ids[p + 1:]
        lab_x = labels[:p] + [-100] * nfeat + labels[p + 1:]
        rows.append((ids_x, lab_x))
        pix.append(pv)
        sizes.append(isz)
        info.append({"text": text, "ids": ids, "labels": labels, "llava_arith_labels": arith,
                     "llava_arith_consistent": arith_ok, "arith_equals_spans": arith == labels,
                     "num_image_tokens": nfeat})
    T = max(len(r[0]) for r in rows)
    input_ids = torch.zeros(len(rows), T, dtype=torch.int64)
    labels = torch.full((len(rows), T), -100, dtype=torch.int64)
    attn = torch.zeros(len(rows), T, dtype=torch.int64)
    for i, (a, l) in enumerate(rows):
        input_ids[i, :len(a)] = torch.tensor(a)
        labels[i, :len(l)] = torch.tensor(l)
        attn[i, :len(a)] = 1
    kw = dict(input_ids=input_ids, attention_mask=attn, labels=labels)
    if mode == "anyres":
        n = max(p.shape[1] for p in pix)
        padded = [torch.cat([p, p.new_zeros((1, n - p.shape[1]) + tuple(p.shape[2:]))], 1) for p in pix]
        kw["pixel_values"] = torch.cat(padded, 0)
        kw["image_sizes"] = torch.cat([torch.as_tensor(s).reshape(1, 2) for s in sizes], 0)
    else:
        kw["pixel_values"] = torch.cat(pix, 0)
    with torch.no_grad():
        loss = float(model(**kw, use_cache=False).loss)
    t = {"input_ids": input_ids, "labels": labels, "attention_mask": attn, "loss": torch.tensor([loss], dtype=torch.float64)}
    for i, p in enumerate(pix):
        t[f"pixel_values_{i}"] = (p[0] if p.dim() == 5 else p).contiguous()
        if sizes[i] is not None:
            t[f"image_sizes_{i}"] = torch.as_tensor(sizes[i]).to(torch.int64).reshape(-1, 2)
    save_file(t, os.path.join(out, f"sft_{name}.safetensors"))
    manifest["sft"][name] = {"template": template, "loss": loss, "samples": info}
    log("sft", name, "loss", loss, "arith==spans", [x["arith_equals_spans"] for x in info])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(8)
    os.makedirs(args.out, exist_ok=True)
    manifest = {"transformers": transformers.__version__, "peft": peft.__version__, "torch": torch.__version__,
                "created": time.strftime("%Y-%m-%d"), "keep_positions": KEEP, "hf_adapters": {}, "stic_saved": {},
                "sft": {}}
    steps = [
        lambda: make_hf_adapter("llava_llama", args.out, manifest),
        lambda: make_released_style(*make_hf_adapter("next_mistral", args.out, manifest), args.out, manifest),
        lambda: check_stic_saved("next_mistral", "stic_saved_v5", args.out, manifest),
        lambda: check_stic_saved("next_mistral", "stic_saved_v4", args.out, manifest),
        lambda: make_sft("llava_llama", "vicuna_v1", args.out, manifest),
        lambda: make_sft("next_mistral", "mistral_instruct", args.out, manifest),
    ]
    for i, s in enumerate(steps):
        try:
            s()
        except Exception as e:  # keep going: one device run has to bring back everything it can
            import traceback
            traceback.print_exc()
            manifest.setdefault("errors", []).append(f"step {i}: {type(e).__name__}: {e}")
        json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
    json.dump(SFT_RECORDS, open(os.path.join(args.out, "sft_data.json"), "w"), indent=1)
    log("done")


if __name__ == "__main__":
    main()
