#!/usr/bin/env python3
"""STIC stage-1 training benchmark: the HF + PEFT peer, the shared data, and the report.

  python3 bench/bench_dpo.py data --dir D            # D/dpo_pairs.jsonl: 64 pairs, ~40-token prompt, ~400-token answers
  python3 bench/bench_dpo.py hf --dir D --pairs P --steps S --out F.json
  python3 bench/bench_dpo.py report --results R      # R/*.json -> markdown table

The peer is the loss of STIC's released trainer written in plain PyTorch on transformers +
PEFT (no trl on the machine): per step, one forward of the 2P rows (chosen, then rejected; as
TRL's concatenated forward, each row's image encoded with its row) through base + LoRA with
gradients, one forward with the adapter disabled under no_grad (the reference), the summed
answer log-probs, -log sigmoid(beta z) - alpha * logp(chosen), backward, clip 1.0, AdamW.
The model is the 7B-shaped benchmark model of bench/bench_generate.py (LLaVA-1.6-Mistral-7B
shape, random bf16 weights) read as LLaVA-1.5 (pad, 576 image tokens: the released training's
image mode), LoRA r 128 / alpha 256 on the seven decoder linears with fp32 adapter weights.
MFU counts 6N model FLOPs per position (2N policy forward, 2N backward through the frozen
base, 2N reference forward), N = language-model parameters, against 989 TFLOP/s.
"""
import argparse, glob, json, os, random, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEAK = 989e12
WORDS = ("the a small large red blue green white black wooden metal round square old new bright dark "
         "table chair window door tree car person dog cat building street sky cloud grass water boat "
         "left right behind near under above beside front middle corner edge top bottom side "
         "stands sits lies holds shows looks appears covers rests leans faces reflects casts").split()
PROMPT = ("Illustrate the details of the picture, taking a step-by-step approach: first the main "
          "objects, then their colours, positions and relations, then the background.")
VICUNA_SYS = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def log(*a):
    print(*a, flush=True)


def answer(rng, n_words):
    """Sentences of random words, n_words in all (~1.3 LLaMA tokens per word)."""
    out, n = [], 0
    while n < n_words:
        s = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        out.append(" ".join(s).capitalize() + ".")
        n += len(s)
    return " ".join(out)


def data(d):
    rng = random.Random(0)
    imgs = sorted(glob.glob(os.path.join(d, "images", "*.png")))
    with open(os.path.join(d, "dpo_pairs.jsonl"), "w") as f:
        for i in range(64):
            user = {"role": "user", "content": "<image>\n" + PROMPT}
            f.write(json.dumps({"id": f"p{i}", "image": imgs[i % len(imgs)],
                                "chosen": [user, {"role": "assistant", "content": answer(rng, 300)}],
                                "rejected": [user, {"role": "assistant", "content": answer(rng, 300)}]}) + "\n")
    log("64 pairs")


def load_pad_model(d):
    """The benchmark LLaVA-NeXT weights read as a LLaVA-1.5 model (no image_newline): pad mode."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig
    mdir = os.path.join(d, "model")
    nc = LlavaNextConfig.from_pretrained(mdir)
    cfg = LlavaConfig(vision_config=nc.vision_config, text_config=nc.text_config, image_token_index=32000,
                      projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default",
                      tie_word_embeddings=False)
    # from_pretrained applies transformers' key conversion (the file has the v4 layout's names);
    # image_newline, which LLaVA-1.5 lacks, is left out with a warning
    model = LlavaForConditionalGeneration.from_pretrained(mdir, config=cfg, dtype=torch.bfloat16, device_map="cuda")
    n_vis = sum(p.numel() for p in model.model.vision_tower.parameters())
    assert n_vis > 3e8, n_vis
    return model


WARMUP = 3  # steps left out of the timing (allocator and kernel autotuning: HF's first three take 4-5 s at 1 pair)


def hf(d, pairs_per_step, steps, out, autocast):
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from transformers import AutoTokenizer, CLIPImageProcessor
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(0)
    t0 = time.time()
    base = load_pad_model(d)
    load_s = time.time() - t0
    tok = AutoTokenizer.from_pretrained(os.path.join(d, "model"))
    n_lm = sum(p.numel() for p in base.model.language_model.parameters()) + sum(p.numel() for p in base.lm_head.parameters())
    model = get_peft_model(base, LoraConfig(r=128, lora_alpha=256, lora_dropout=0.0, task_type="CAUSAL_LM",
                                            target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"))
    params = [p for p in model.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in params)  # PEFT's autocast_adapter_dtype: fp32 adapters
    opt = torch.optim.AdamW(params, lr=1e-7, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    proc = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    recs = [json.loads(l) for l in open(os.path.join(d, "dpo_pairs.jsonl"))]

    def encode(msgs):  # vicuna_v1: system USER: <image>\nprompt ASSISTANT: answer</s>
        pre = VICUNA_SYS + " USER: "
        post = msgs[0]["content"].replace("<image>\n", "\n") + " ASSISTANT:"
        ans = " " + msgs[1]["content"] + "</s>"
        a = tok(pre, add_special_tokens=True).input_ids
        b = tok(post, add_special_tokens=False).input_ids
        c = tok(ans, add_special_tokens=False).input_ids
        ids = a + [32000] * 576 + b + c
        return ids, [-100] * (len(ids) - len(c)) + c

    def pixels(path):
        return proc(images=[Image.open(path).convert("RGB")], return_tensors="pt")["pixel_values"].to("cuda", torch.bfloat16)

    def batch(k):
        rs = [recs[(k * pairs_per_step + i) % len(recs)] for i in range(pairs_per_step)]
        rows = [encode(r["chosen"]) for r in rs] + [encode(r["rejected"]) for r in rs]
        T = max(len(r[0]) for r in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        lab = torch.full((len(rows), T), -100, dtype=torch.long)
        att = torch.zeros(len(rows), T, dtype=torch.long)
        for i, (a, l) in enumerate(rows):
            ids[i, :len(a)] = torch.tensor(a)
            lab[i, :len(l)] = torch.tensor(l)
            att[i, :len(a)] = 1
        px = torch.cat([pixels(r["image"]) for r in rs] * 2, 0)
        return ids.cuda(), lab.cuda(), att.cuda(), px, int(att.sum())

    def logps(logits, labels):
        lg = logits[:, :-1].float()
        y = labels[:, 1:].clone()
        m = y != -100
        y[~m] = 0
        return (lg.log_softmax(-1).gather(-1, y.unsqueeze(-1)).squeeze(-1) * m).sum(-1)

    model.train()
    rows = []
    torch.cuda.reset_peak_memory_stats()
    for s in range(steps):
        ids, lab, att, px, positions = batch(s)
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            lp = logps(model(input_ids=ids, attention_mask=att, pixel_values=px, use_cache=False).logits, lab)
            with torch.no_grad(), model.disable_adapter():
                rlp = logps(model(input_ids=ids, attention_mask=att, pixel_values=px, use_cache=False).logits, lab)
        P = pairs_per_step
        z = (lp[:P] - rlp[:P]) - (lp[P:] - rlp[P:])
        loss = (-F.logsigmoid(0.1 * z) - lp[:P] / 1024).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        rows.append({"step": s + 1, "s": dt, "positions": positions, "loss": float(loss)})
        log(f"hf P={P} step {s + 1}: {dt:.3f}s {positions} positions loss {float(loss):.4f}")
    timed = rows[WARMUP:] or rows
    secs = sum(r["s"] for r in timed)
    pos = sum(r["positions"] for r in timed)
    res = {"impl": "hf+peft autocast" if autocast else "hf+peft", "pairs_per_step": pairs_per_step, "steps_timed": len(timed),
           "pairs_per_s": pairs_per_step * len(timed) / secs, "tokens_per_s": pos / secs,
           "mfu": pos / secs * 6 * n_lm / PEAK, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "lm_params": n_lm, "load_s": load_s, "steps": rows, "gpu": torch.cuda.get_device_name()}
    json.dump(res, open(out, "w"), indent=1)
    log(json.dumps({k: v for k, v in res.items() if k != "steps"}))


def stic_summary(metrics, pairs_per_step, peak_file, out, impl):
    rows = [json.loads(l) for l in open(metrics) if '"mfu"' in l]
    timed = rows[WARMUP:] or rows
    if not timed:
        log(f"{impl} P={pairs_per_step}: no timed steps (the run failed)")
        return
    res = {"impl": impl, "pairs_per_step": pairs_per_step, "steps_timed": len(timed),
           "pairs_per_s": sum(r["pairs_per_s"] for r in timed) / len(timed),
           "tokens_per_s": sum(r["tokens_per_s"] for r in timed) / len(timed),
           "mfu": sum(r["mfu"] for r in timed) / len(timed),
           "peak_gib": int(open(peak_file).read()) / 1024 if os.path.exists(peak_file) else None,
           "losses": [r["loss"] for r in rows]}
    json.dump(res, open(out, "w"), indent=1)
    log(json.dumps(res))


def report(results):
    rs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(results, "dpo_*.json")))]
    by = {(r["impl"], r["pairs_per_step"]): r for r in rs}
    print("| pairs / step | impl | pairs/s | tokens/s | MFU | peak GiB | stic / best HF |")
    print("|---|---|---|---|---|---|---|")
    for (impl, p), r in sorted(by.items(), key=lambda x: (x[0][1], x[0][0])):
        hs = [by[k]["pairs_per_s"] for k in by if k[1] == p and k[0].startswith("hf")]
        ratio = f"{r['pairs_per_s'] / max(hs):.2f}x" if impl.startswith("stic") and hs else ""
        pk = f"{r['peak_gib']:.1f}" if r.get("peak_gib") else "-"
        print(f"| {p} | {impl} | {r['pairs_per_s']:.3f} | {r['tokens_per_s']:.0f} | {100 * r['mfu']:.1f}% | {pk} | {ratio} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["data", "hf", "stic-summary", "report"])
    ap.add_argument("--dir", default="/tmp/stic-bench")
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--out", default="dpo_hf.json")
    ap.add_argument("--metrics", default="")
    ap.add_argument("--peak", default="")
    ap.add_argument("--results", default=".")
    ap.add_argument("--autocast", action="store_true", help="hf: run the forwards under torch.autocast(bf16), as HF Trainer --bf16")
    ap.add_argument("--impl", default="stic")
    a = ap.parse_args()
    if a.cmd == "data":
        data(a.dir)
    elif a.cmd == "hf":
        hf(a.dir, a.pairs, a.steps, a.out, a.autocast)
    elif a.cmd == "stic-summary":
        stic_summary(a.metrics, a.pairs, a.peak, a.out, a.impl)
    else:
        report(a.results)
