#!/usr/bin/env python3
"""The stage-1 data workload (stic generate-pref) against HF transformers, same card, same run.

  gemm    the measured bf16 GEMM rate (8192^3 matmuls), FLOP/s
  hf      HF LlavaNextForConditionalGeneration.generate replaying stic's pairs file request for
          request: per image the step-by-step prompt on the image (chosen) and the pair's rejected
          request (its hallucination prompt on the image, or its normal prompt on the corrupted
          image: lowres = PIL bilinear to a 20-px short side, jitter = brightness x hue shift),
          T = 0.2 sampling, top-k off, every answer exactly --new-tokens long. Batch B = B images:
          their chosen requests in one generate call, their rejected requests in another (left
          padding); batch 1 is the released code's way (two generate calls per image).
  report  stic's --stats files (stic_pref_*.json) and hf_pref.json as a markdown table, with
          the fraction of the roofline: prefill FLOPs (2 x LM parameters x prompt positions
          computed) at the measured GEMM rate + decode bytes (LM weights per step + KV read) at
          the measured copy bandwidth, over the measured time. The vision tower's FLOPs are left
          out of the bound (so the fraction errs low).
The model, images and tokenizer are bench/bench_generate.py's (prepare).
"""
import argparse, glob, json, os, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def gemm_rate():
    import torch
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    n = 20
    for _ in range(n):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * n / (time.perf_counter() - t)


def corrupt(im, c):
    import numpy as np
    from PIL import Image
    if c is None:
        return im
    if c["kind"] == "lowres":
        w, h = im.size
        s = c.get("short_side", 20)
        size = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        return im.resize(size, Image.BILINEAR)
    x = np.asarray(im).astype(np.float32) * c["brightness"]
    x = np.clip(x, 0, 255).astype(np.uint8)
    hsv = np.asarray(Image.fromarray(x).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(c["hue"] * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def hf(d, pairs_path, out, new_tokens, batches):
    import torch
    from PIL import Image
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_generate import load_hf
    model, tok, proc = load_hf(d)
    pairs = [json.loads(l) for l in open(pairs_path)]
    idir = os.path.join(d, "images")
    results = []
    for bs, n_img in batches:
        torch.cuda.reset_peak_memory_stats()
        t_all, done = 0.0, 0
        for start in range(0, n_img, bs):
            group = [pairs[(start + i) % len(pairs)] for i in range(bs)]
            for side in ("chosen", "rejected"):
                ims, texts = [], []
                for p in group:
                    im = Image.open(os.path.join(idir, p["image"])).convert("RGB")
                    if side == "rejected" and p["corruption"] is not None:
                        im = corrupt(im, p["corruption"])
                    ims.append(im)
                    texts.append("[INST] <image>\n" + p["prompts"][side] + " [/INST]")
                inp = proc(images=ims, text=texts, return_tensors="pt", padding=True).to("cuda")
                inp["pixel_values"] = inp["pixel_values"].to(torch.bfloat16)
                torch.cuda.synchronize()
                t = time.perf_counter()
                with torch.no_grad():
                    ids = model.generate(**inp, do_sample=True, temperature=0.2, top_k=0, top_p=1.0,
                                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id)
                torch.cuda.synchronize()
                t_all += time.perf_counter() - t
                assert ids.shape[1] - inp["input_ids"].shape[1] == new_tokens, ids.shape
            done += bs
        r = {"impl": "hf", "batch": bs, "images": done, "new_tokens": new_tokens, "seconds": t_all,
             "img_s": done / t_all, "tok_s": 2 * done * new_tokens / t_all,
             "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        log(r)
        results.append(r)
        json.dump(results, open(out, "w"), indent=1)


def report(d, results_dir, bw, gemm):
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(os.path.join(d, "model"))
    t = cfg.text_config
    hd = t.hidden_size // t.num_attention_heads
    lm_params = (t.num_hidden_layers * (t.hidden_size * (t.num_attention_heads * hd + 2 * t.num_key_value_heads * hd)
                 + t.num_attention_heads * hd * t.hidden_size + 3 * t.hidden_size * t.intermediate_size)
                 + t.vocab_size * t.hidden_size)
    w_bytes = lm_params * 2
    kv_per_token = 2 * t.num_hidden_layers * t.num_key_value_heads * hd * 2
    hfr = json.load(open(os.path.join(results_dir, "hf_pref.json"))) if os.path.exists(os.path.join(results_dir, "hf_pref.json")) else []
    best = max((r["img_s"] for r in hfr if r["batch"] > 1), default=float("nan"))
    b1 = next((r["img_s"] for r in hfr if r["batch"] == 1), float("nan"))
    print(f"GEMM {gemm / 1e12:.0f} TFLOP/s (bf16, measured); copy bandwidth {bw / 1e12:.2f} TB/s (read+write); "
          f"LM {lm_params / 1e9:.2f}B parameters\n")
    print("| run | images | tokens/side | images/s | tokens/s | peak GiB | roofline fraction | vs HF |")
    print("|---|---|---|---|---|---|---|---|")
    for r in hfr:
        print(f"| HF generate, batch {r['batch']} images | {r['images']} | {r['new_tokens']} | {r['img_s']:.3f} | "
              f"{r['tok_s']:.0f} | {r['peak_gib']:.1f} | | |")
    for f in sorted(glob.glob(os.path.join(results_dir, "stic_pref_*.json"))):
        s = json.load(open(f))
        name = os.path.basename(f)[10:-5]
        prefill_t = 2 * lm_params * s.get("prefill_positions", s["prompt_tokens"]) / gemm
        decode_t = (s["decode_steps"] * w_bytes + kv_per_token * s["kv_tokens_read"]) / bw
        frac = (prefill_t + decode_t) / s["seconds"]
        img_s = s["images"] / s["seconds"]
        print(f"| stic generate-pref {name} | {s['images']} | {s['generated_tokens'] // max(1, 2 * s['images'])} | "
              f"{img_s:.3f} | {s['generated_tokens'] / s['seconds']:.0f} | {s.get('peak_gib', float('nan')):.1f} | "
              f"{100 * frac:.0f}% (prefill {prefill_t:.1f}s + decode {decode_t:.1f}s bound, {s['seconds']:.1f}s run) | "
              f"{img_s / best:.1f}x HF best batch, {img_s / b1:.0f}x HF batch 1 |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["gemm", "hf", "report"])
    ap.add_argument("--dir", default="/tmp/stic-bench")
    ap.add_argument("--pairs")
    ap.add_argument("--out", default="hf_pref.json")
    ap.add_argument("--results", default=".")
    ap.add_argument("--new-tokens", type=int, default=400)
    ap.add_argument("--batches", default="1:2,16:16,32:32")
    ap.add_argument("--bw", type=float, default=0)
    ap.add_argument("--gemm", type=float, default=0)
    a = ap.parse_args()
    if a.cmd == "gemm":
        print(gemm_rate())
    elif a.cmd == "hf":
        hf(a.dir, a.pairs, a.out, a.new_tokens, [tuple(int(x) for x in b.split(":")) for b in a.batches.split(",")])
    else:
        report(a.dir, a.results, a.bw, a.gemm)
