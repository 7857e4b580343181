#!/usr/bin/env python3
"""Generation benchmark on the stage-1 workload: stic vs HF transformers, same card, same run.

  prepare  build a LLaVA-1.6-Mistral-7B-shaped checkpoint with random bf16 weights (timing does
           not depend on values), a LLaMA-vocabulary tokenizer, 672x672 images cut from real
           photos (anyres -> 2x2 grid + base = 2928 image tokens) and stic request files
  hf       time LlavaNextForConditionalGeneration.generate at several batch sizes
  report   combine HF's numbers with stic's --stats files into a markdown table

The step-by-step prompt is STIC's preferred prompt; EOS is ignored so every request generates
exactly max_new_tokens (HF: min_new_tokens = max_new_tokens; stic: --ignore-eos).
Bandwidth bound per decode step = language-model weight bytes + KV bytes of the active
sequences, divided by the measured device-to-device copy bandwidth (read + write bytes / s).
"""
import argparse, glob, json, os, sys, time

STEP_PROMPT = "\n".join([
    "Please provide a detailed description of the image, focusing on the following.",
    "Identify the main subjects (people, animals, objects) in the image and describe what they are doing.",
    "Describe the setting of the image. Is it indoors or outdoors? What kind of environment or location does it depict?",
    "What mood does the image convey? Are there any specific elements (such as lighting, weather, expressions) that contribute to this atmosphere?",
    "Describe the dominant colors and the overall composition. How do these elements affect the image's impact?",
    "Point out any details or symbols that might be relevant to understanding the image's meaning or context.",
    "If applicable, provide interpretations of what the image might represent or communicate."])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def copy_bandwidth():
    import torch
    x = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    n = 20
    for _ in range(n):
        y.copy_(x)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / n
    del x, y
    return 2 * 2 * 1024**3 / dt  # bytes read + written per second


def config():
    from transformers import CLIPVisionConfig, MistralConfig, LlavaNextConfig
    vc = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                          image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    tc = MistralConfig(vocab_size=32064, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8, rope_theta=1e6, sliding_window=None,
                       max_position_embeddings=32768, rms_norm_eps=1e-5, tie_word_embeddings=False)
    return LlavaNextConfig(vision_config=vc, text_config=tc, image_token_index=32000, image_token_id=32000,
                           projector_hidden_act="gelu", vision_feature_layer=-2,
                           vision_feature_select_strategy="default", tie_word_embeddings=False,
                           image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]])


def prepare(d, n_images):
    import torch
    from PIL import Image
    from transformers import LlavaNextForConditionalGeneration, AutoTokenizer
    os.makedirs(d, exist_ok=True)
    mdir = os.path.join(d, "model")
    t = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlavaNextForConditionalGeneration(config())
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(mdir)
    del model
    torch.cuda.empty_cache()
    log(f"model saved in {time.time() - t:.0f}s")
    # tokenizer: the LLaMA vocabulary (32000 pieces) + <image> 32000
    os.system(f"python3 {ROOT}/tools/sp_model_from_vocab.py {ROOT}/tests/fixtures/tokenizer/llama_pieces.txt {mdir}/tokenizer.model")
    json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
               "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>",
               "added_tokens_decoder": {"32000": {"content": "<image>", "special": True, "lstrip": False,
                                                  "rstrip": False, "normalized": False, "single_word": False}}},
              open(f"{mdir}/tokenizer_config.json", "w"))
    tok = AutoTokenizer.from_pretrained(mdir)
    tok.save_pretrained(mdir)
    # images: 672x672 cuts of real photos (skimage's data folder + stic's fixtures)
    import skimage
    srcs = sorted(glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.png")) +
                  glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.jpg")) +
                  glob.glob(os.path.join(ROOT, "tests/fixtures/images/*.jpg")))
    photos = []
    for s in srcs:
        try:
            im = Image.open(s).convert("RGB")
            if min(im.size) >= 256:
                photos.append(im)
        except Exception:
            pass
    idir = os.path.join(d, "images")
    os.makedirs(idir, exist_ok=True)
    for i in range(n_images):
        im = photos[i % len(photos)]
        w, h = im.size
        s = min(w, h) * (0.7 + 0.3 * ((i // len(photos)) % 4) / 3)
        x0 = (i * 37) % max(1, int(w - s) + 1)
        y0 = (i * 53) % max(1, int(h - s) + 1)
        im.crop((x0, y0, x0 + int(s), y0 + int(s))).resize((672, 672), Image.BICUBIC).save(f"{idir}/{i:04d}.png")
    log(f"{n_images} images from {len(photos)} photos")
    for n in (64, 128, 256, 512):
        with open(os.path.join(d, f"req_{n}.jsonl"), "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"r{i}", "image": f"{idir}/{i % n_images:04d}.png", "prompt": STEP_PROMPT}) + "\n")
    # shared prefix: 4 prompts per image (STIC asks several things of one image)
    normal = ["Illustrate the details of the picture.", "Summarize the visual content presented.",
              "Explain what is depicted in the photograph.", STEP_PROMPT]
    with open(os.path.join(d, "req_shared_64.jsonl"), "w") as f:
        for i in range(64):
            f.write(json.dumps({"id": f"s{i}", "image": f"{idir}/{i // 4:04d}.png", "prompt": normal[i % 4]}) + "\n")


def load_hf(d):
    """The benchmark model in HF (bf16, cuda), its left-padding tokenizer and processor."""
    import torch
    from transformers import LlavaNextForConditionalGeneration, AutoTokenizer, LlavaNextProcessor, LlavaNextImageProcessor
    mdir = os.path.join(d, "model")
    model = LlavaNextForConditionalGeneration.from_pretrained(mdir, dtype=torch.bfloat16, device_map="cuda").eval()
    tok = AutoTokenizer.from_pretrained(mdir)
    tok.padding_side = "left"
    ip = LlavaNextImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                 image_grid_pinpoints=model.config.image_grid_pinpoints)
    proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                              image_token="<image>", num_additional_image_tokens=1)
    return model, tok, proc


def hf(d, out, new_tokens, batches):
    import torch
    from PIL import Image
    model, tok, proc = load_hf(d)
    imgs = sorted(glob.glob(os.path.join(d, "images", "*.png")))
    prompt = "[INST] <image>\n" + STEP_PROMPT + " [/INST]"
    results = []
    for bs, n_req in batches:
        torch.cuda.reset_peak_memory_stats()
        total, done, t_all = 0.0, 0, 0.0
        for start in range(0, n_req, bs):
            batch = [Image.open(imgs[(start + i) % len(imgs)]).convert("RGB") for i in range(bs)]
            inp = proc(images=batch, text=[prompt] * bs, return_tensors="pt", padding=True).to("cuda")
            inp["pixel_values"] = inp["pixel_values"].to(torch.bfloat16)
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                out_ids = model.generate(**inp, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                         pad_token_id=tok.pad_token_id)
            torch.cuda.synchronize()
            t_all += time.perf_counter() - t
            done += bs
            prompt_len = inp["input_ids"].shape[1]
            assert out_ids.shape[1] - prompt_len == new_tokens, out_ids.shape
        r = {"impl": "hf", "batch": bs, "requests": done, "new_tokens": new_tokens, "seconds": t_all,
             "tok_s": done * new_tokens / t_all, "img_s": done / t_all, "prompt_len": int(prompt_len),
             "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        log(r)
        results.append(r)
        json.dump(results, open(out, "w"), indent=1)


def report(d, results_dir, bw):
    import math
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(os.path.join(d, "model"))
    t = cfg.text_config
    hd = t.hidden_size // t.num_attention_heads
    lm_params = (t.num_hidden_layers * (t.hidden_size * (t.num_attention_heads * hd + 2 * t.num_key_value_heads * hd)
                 + t.num_attention_heads * hd * t.hidden_size + 3 * t.hidden_size * t.intermediate_size)
                 + t.vocab_size * t.hidden_size)  # + lm_head read each step (embedding rows negligible)
    w_bytes = lm_params * 2
    kv_per_token = 2 * t.num_hidden_layers * t.num_key_value_heads * hd * 2
    rows = []
    hf = json.load(open(os.path.join(results_dir, "hf.json"))) if os.path.exists(os.path.join(results_dir, "hf.json")) else []
    best_hf = max((r["tok_s"] for r in hf if r["batch"] > 1), default=float("nan"))
    hf1 = next((r["tok_s"] for r in hf if r["batch"] == 1), float("nan"))
    for r in hf:
        rows.append((f"HF generate, batch {r['batch']}", r["requests"], r["new_tokens"], r["tok_s"], r["img_s"], r["peak_gib"], "", ""))
    for f in sorted(glob.glob(os.path.join(results_dir, "stic_*.json"))):
        s = json.load(open(f))
        name = os.path.basename(f)[5:-5]
        mem = s.get("peak_gib", float("nan"))
        step = s["decode_seconds"] / max(1, s["decode_steps"])
        bytes_step = w_bytes + kv_per_token * s["kv_tokens_read"] / max(1, s["decode_steps"])
        frac = bytes_step / step / bw
        rows.append((f"stic {name}", s["requests"], s["generated_tokens"] // max(1, s["requests"]),
                     s["generated_tokens"] / s["seconds"], s["requests"] / s["seconds"], mem,
                     f"{100 * frac:.0f}% ({step * 1e3:.1f} ms/step, {s['slot_steps'] / max(1, s['decode_steps']):.0f} seqs)",
                     f"{s['generated_tokens'] / s['seconds'] / best_hf:.1f}x best HF, {s['generated_tokens'] / s['seconds'] / hf1:.0f}x HF b1"))
    print(f"copy bandwidth {bw / 1e12:.2f} TB/s (read+write); LM weights {w_bytes / 1e9:.1f} GB; KV {kv_per_token / 1024:.0f} KiB/token\n")
    print("| run | requests | new tokens | tokens/s (end to end) | images/s | peak GiB | decode: fraction of bandwidth bound | vs HF |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.0f} | {r[4]:.2f} | {r[5]:.1f} | {r[6]} | {r[7]} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prepare", "hf", "report", "bw"])
    ap.add_argument("--dir", default="/tmp/stic-bench")
    ap.add_argument("--out", default="hf.json")
    ap.add_argument("--results", default=".")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--batches", default="1:1,16:16,64:64")
    ap.add_argument("--bw", type=float, default=0)
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.dir, a.images)
    elif a.cmd == "hf":
        hf(a.dir, a.out, a.new_tokens, [tuple(int(x) for x in b.split(":")) for b in a.batches.split(",")])
    elif a.cmd == "bw":
        print(copy_bandwidth())
    else:
        report(a.dir, a.results, a.bw)
