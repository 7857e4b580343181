#!/usr/bin/env python3
"""STIC's stage-1 loss (regularised DPO) in plain PyTorch + transformers + PEFT: fixtures for stic.

Run on the GPU machine (transformers 5.x, peft, torch; CPU, fp32):
    python3 tools/make_dpo_fixtures.py --out OUT && cp -r OUT/* tests/fixtures/dpo/
Inputs: the parity checkpoints (tests/fixtures/parity, tools/make_parity_fixtures.py) and the
test images. This is an independent implementation of the loss written from its formula
(reference/stic-method.md section 3): nothing here calls stic.

Per model (llava_llama: vicuna_v1, pad; next_mistral: mistral_instruct, anyres):
  start_<model>/            a PEFT LoRA adapter (r 4, alpha 8, every decoder linear) with non-zero
                            random A and B, so the policy (base + adapter) differs from the
                            reference (adapter disabled)
  dpo_<model>.safetensors   the 2P-row batch (chosen rows, then rejected) as HF sees it: ids,
                            labels, per-pair pixel values / image sizes; per-pair log-probs of the
                            policy and the reference (label rule, and the released trainer's
                            "best other token" rule for the rejected side); for each loss setting
                            the loss and the gradient of every LoRA weight (grad.<setting>.<key>);
                            the LoRA weights after one clipped AdamW step of setting sigmoid_sum
                            (step.<key>)
  manifest.json             versions, settings, losses and metrics (TRL's names)
  dpo_data.json             the preference pairs (published STIC format + ids)
"""
import argparse, json, os, sys, time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_parity_fixtures as mpf  # noqa: E402
from make_peft_fixtures import render_with_spans, load_base  # noqa: E402

import transformers  # noqa: E402
import peft  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from PIL import Image  # noqa: E402

PARITY = os.path.join(ROOT, "tests", "fixtures", "parity")
TEXT_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
CASES = {"llava_llama": ("vicuna_v1", "pad"), "next_mistral": ("mistral_instruct", "anyres")}

PAIRS = [
    {"id": "p0", "image": "china.jpg",
     "chosen": [{"role": "user", "content": "<image>\nDescribe the image in detail."},
                {"role": "assistant", "content": "A large building with a red roof stands under a clear sky."}],
     "rejected": [{"role": "user", "content": "<image>\nDescribe the image in detail."},
                  {"role": "assistant", "content": "Two cats sleep on a blue sofa."}]},
    {"id": "p1", "image": "flower_portrait.jpg",
     "chosen": [{"role": "user", "content": "<image>\nWhat do you see?"},
                {"role": "assistant", "content": "A pink flower, seen up close."}],
     "rejected": [{"role": "user", "content": "<image>\nWhat do you see?"},
                  {"role": "assistant", "content": "A red car parked next to a tall tree and a dog."}]},
    {"id": "p2", "image": "rocket.jpg",
     "chosen": [{"role": "user", "content": "<image>\nDescribe the image."},
                {"role": "assistant", "content": "A rocket on its launch pad."}],
     "rejected": [{"role": "user", "content": "<image>\nDescribe the image."},
                  {"role": "assistant", "content": "A rocket on its launch pad, with people watching from a boat."}]},
]

BETA = 0.1
SETTINGS = {  # name: (loss_type, alpha, alpha_norm, label_smoothing, released rejected rule)
    "sigmoid_sum": ("sigmoid", 1.0 / 1024, "sum", 0.0, False),
    "sigmoid_mean": ("sigmoid", 0.5, "mean", 0.0, False),
    "sigmoid_ls": ("sigmoid", 1.0 / 1024, "sum", 0.1, False),
    "hinge": ("hinge", 1.0 / 1024, "sum", 0.0, False),
    "ipo": ("ipo", 1.0 / 1024, "sum", 0.0, False),
    "released": ("sigmoid", 1.0 / 1024, "sum", 0.0, True),
}
STEP_LR = 1e-2


def log(*a):
    print(*a, flush=True)


def encode_side(tok, template, msgs, nfeat):
    turns = []
    for m in msgs:
        role = "human" if m["role"] == "user" else "gpt"
        v = m["content"]
        if "<image>" in v:  # LLaVA's preprocess_multimodal: the marker at the front
            v = "<image>\n" + v.replace("<image>", "").strip()
        turns.append((role, v))
    text, spans = render_with_spans(template, turns)
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    labels = []
    for t, (s, e) in zip(ids, offs):
        lab = -100
        if (e > s or (s == e and s > 0)) and any(b <= s < en for b, en in spans):
            lab = t
        labels.append(lab)
    if ids[0] == tok.bos_token_id:
        labels[0] = -100
    p = ids.index(mpf.IMAGE_ID)
    return ids, labels, ids[:p] + [mpf.IMAGE_ID] * nfeat + ids[p + 1:], labels[:p] + [-100] * nfeat + labels[p + 1:]


def seq_logps(logits, labels, best_other=False):
    """Per row: sum over label positions of log p(label) (or, best_other, of the most likely token
    other than the label, the released trainer's rejected rule)."""
    lg = logits[:, :-1, :].float()
    y = labels[:, 1:].clone()
    mask = y != -100
    y[~mask] = 0
    logp = lg.log_softmax(-1)
    if best_other:
        top2 = lg.topk(2, dim=-1).indices
        y = torch.where(top2[..., 0] == y, top2[..., 1], top2[..., 0])
    tok = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (tok * mask).sum(-1), mask.sum(-1)


def loss_of(pc, pr, rc, rr, nc, setting):
    loss_type, alpha, norm, ls, _ = SETTINGS[setting]
    z = (pc - rc) - (pr - rr)
    if loss_type == "sigmoid":
        d = -(1 - ls) * F.logsigmoid(BETA * z) - ls * F.logsigmoid(-BETA * z)
    elif loss_type == "hinge":
        d = torch.relu(1 - BETA * z)
    else:
        d = (z - 1 / (2 * BETA)) ** 2
    nll = -pc / (nc.float() if norm == "mean" else 1.0)
    loss = (d + alpha * nll).mean()
    rw_c, rw_r = BETA * (pc - rc).detach(), BETA * (pr - rr).detach()
    metrics = {"loss": float(loss), "rewards/chosen": float(rw_c.mean()), "rewards/rejected": float(rw_r.mean()),
               "rewards/accuracies": float((rw_c > rw_r).float().mean()), "rewards/margins": float((rw_c - rw_r).mean()),
               "logps/chosen": float(pc.detach().mean()), "logps/rejected": float(pr.detach().mean()),
               "nll": float(nll.detach().mean())}
    return loss, metrics


def peft_key(name):
    return name.replace(".default", "")


def make_case(name, out, manifest):
    template, mode = CASES[name]
    base = load_base(name)
    tok = transformers.AutoTokenizer.from_pretrained(os.path.join(PARITY, name))
    proc, _ = mpf.image_processor(name, mode)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TEXT_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.save_pretrained(os.path.join(out, f"start_{name}"))
    lora = [(peft_key(n), p) for n, p in model.named_parameters() if p.requires_grad]
    assert lora and all("lora_" in k for k, _ in lora)

    P = len(PAIRS)
    t = {}
    pix, sizes, rows, info = [], [], [], []
    for i, pr in enumerate(PAIRS):
        pil = Image.open(os.path.join(mpf.IMG, pr["image"])).convert("RGB")
        px = proc(images=[pil], return_tensors="pt")
        pv = px["pixel_values"].float()
        isz = px.get("image_sizes")
        nfeat = mpf.feature_count(base, pv, isz if mode == "anyres" else None)
        pix.append(pv)
        sizes.append(isz)
        t[f"pixel_values_{i}"] = (pv[0] if pv.dim() == 5 else pv).contiguous()
        if isz is not None:
            t[f"image_sizes_{i}"] = torch.as_tensor(isz).to(torch.int64).reshape(-1, 2)
        sides = {}
        for side in ("chosen", "rejected"):
            ids, labels, ids_x, lab_x = encode_side(tok, template, pr[side], nfeat)
            sides[side] = {"ids": ids, "labels": labels}
            rows.append((side, i, ids_x, lab_x))
        info.append({"num_image_tokens": nfeat, **sides})
    rows.sort(key=lambda r: (r[0] != "chosen", r[1]))  # chosen rows, then rejected, by pair
    T = max(len(r[2]) for r in rows)
    input_ids = torch.zeros(2 * P, T, dtype=torch.int64)
    labels = torch.full((2 * P, T), -100, dtype=torch.int64)
    attn = torch.zeros(2 * P, T, dtype=torch.int64)
    for k, (_, _, a, l) in enumerate(rows):
        input_ids[k, :len(a)] = torch.tensor(a)
        labels[k, :len(l)] = torch.tensor(l)
        attn[k, :len(a)] = 1
    kw = dict(input_ids=input_ids, attention_mask=attn, use_cache=False)
    order = [r[1] for r in rows]
    if mode == "anyres":
        n = max(p.shape[1] for p in pix)
        padded = [torch.cat([p, p.new_zeros((1, n - p.shape[1]) + tuple(p.shape[2:]))], 1) for p in pix]
        kw["pixel_values"] = torch.cat([padded[i] for i in order], 0)
        kw["image_sizes"] = torch.cat([torch.as_tensor(sizes[i]).reshape(1, 2) for i in order], 0)
    else:
        kw["pixel_values"] = torch.cat([pix[i] for i in order], 0)
    t.update(input_ids=input_ids, labels=labels, attention_mask=attn)

    model.eval()  # no dropout anywhere; gradients still flow
    logits = model(**kw).logits.float()
    lp, cnt = seq_logps(logits, labels)
    lp_other, _ = seq_logps(logits, labels, best_other=True)
    with torch.no_grad(), model.disable_adapter():
        ref_logits = model(**kw).logits.float()
    rlp, _ = seq_logps(ref_logits, labels)
    rlp_other, _ = seq_logps(ref_logits, labels, best_other=True)
    pc, pr_, rc, rr = lp[:P], lp[P:], rlp[:P], rlp[P:]
    nc = cnt[:P]
    t.update({"policy_chosen": pc.detach().double(), "policy_rejected": pr_.detach().double(),
              "reference_chosen": rc.double(), "reference_rejected": rr.double(),
              "policy_rejected_best_other": lp_other[P:].detach().double(),
              "reference_rejected_best_other": rlp_other[P:].double(), "chosen_tokens": nc.to(torch.int64),
              "rejected_tokens": cnt[P:].to(torch.int64)})
    res = {"template": template, "image_mode": mode, "pairs": info, "settings": {}}
    for s in SETTINGS:
        released = SETTINGS[s][4]
        loss, metrics = loss_of(pc, lp_other[P:] if released else pr_, rc, rlp_other[P:] if released else rr, nc, s)
        model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        for k, p in lora:
            t[f"grad.{s}.{k}"] = p.grad.detach().clone().contiguous()
        res["settings"][s] = metrics
        log(name, s, metrics["loss"], "grad norm", float(torch.sqrt(sum((p.grad ** 2).sum() for _, p in lora))))
    # one optimizer step of sigmoid_sum: clip the global norm to 1, AdamW (torch.optim)
    loss, _ = loss_of(pc, pr_, rc, rr, nc, "sigmoid_sum")
    model.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for _, p in lora]
    gnorm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
    opt = torch.optim.AdamW(params, lr=STEP_LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    opt.step()
    for k, p in lora:
        t[f"step.{k}"] = p.detach().clone().contiguous()
    res["step"] = {"setting": "sigmoid_sum", "lr": STEP_LR, "max_grad_norm": 1.0, "grad_norm": gnorm}
    save_file(t, os.path.join(out, f"dpo_{name}.safetensors"))
    manifest["cases"][name] = res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(8)
    os.makedirs(args.out, exist_ok=True)
    manifest = {"transformers": transformers.__version__, "peft": peft.__version__, "torch": torch.__version__,
                "created": time.strftime("%Y-%m-%d"), "beta": BETA,
                "settings": {k: dict(zip(["loss_type", "alpha", "alpha_norm", "label_smoothing", "released_rejected"], v))
                             for k, v in SETTINGS.items()}, "cases": {}}
    for name in CASES:
        try:
            make_case(name, args.out, manifest)
        except Exception as e:  # one device run has to bring back everything it can
            import traceback
            traceback.print_exc()
            manifest.setdefault("errors", []).append(f"{name}: {type(e).__name__}: {e}")
        json.dump(manifest, open(os.path.join(args.out, "manifest.json"), "w"), indent=1)
    json.dump(PAIRS, open(os.path.join(args.out, "dpo_data.json"), "w"), indent=1)
    log("done")


if __name__ == "__main__":
    main()
