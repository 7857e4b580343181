#!/usr/bin/env python3
"""Where a decode step's time goes, part by part, at the benchmark's shapes (GPU machine).

Times with CUDA events, on random bf16 tensors shaped like Mistral-7B (32 layers, 4096 wide,
32 query / 8 KV heads of 128, MLP 14336, vocab 32000), S sequences of ~CTX cached tokens:
  - the decode attention stic calls (aten::_flash_attention_forward, varlen + seqused_k over a
    token-major cache), per layer and for all layers;
  - the same attention as SDPA on a contiguous (S, H, CTX, D) cache, GQA expanded (reference);
  - the seven GEMMs of a layer at M = S rows, and the LM head;
  - the elementwise work of a layer as stic's eager code does it (RMSNorm x2, RoPE, residuals,
    SiLU-mul);
and compares each with its bytes moved / measured copy bandwidth.
Usage: python3 bench/decode_micro.py [--s 64] [--ctx 3200] [--out FILE.json]
"""
import argparse
import json
import math

import torch


def timeit(fn, iters=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / iters  # ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--s", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=3200)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    dev, bf = "cuda", torch.bfloat16
    S, CTX, H, HKV, D, C, F, V, NL = a.s, a.ctx, 32, 8, 128, 4096, 14336, 32000, 32
    L = (CTX + 256 + 255) // 256 * 256
    res = {"card": torch.cuda.get_device_name(), "torch": torch.__version__, "S": S, "ctx": CTX}

    # copy bandwidth (read + write) on 2 GiB
    x = torch.empty(1 << 30, dtype=bf, device=dev)
    y = torch.empty_like(x)
    ms = timeit(lambda: y.copy_(x), iters=10)
    bw = 2 * x.numel() * 2 / (ms * 1e-3)
    res["copy_bw_TBps"] = bw / 1e12
    del x, y

    # attention: stic's flash varlen call over a token-major cache
    kc = torch.randn(S, L, HKV, D, dtype=bf, device=dev)
    vc = torch.randn(S, L, HKV, D, dtype=bf, device=dev)
    q = torch.randn(S, H, D, dtype=bf, device=dev)
    used = torch.full((S,), CTX, dtype=torch.int32, device=dev)
    cu_k = torch.arange(S + 1, dtype=torch.int32, device=dev) * L
    cu_q = torch.arange(S + 1, dtype=torch.int32, device=dev)
    op = torch.ops.aten._flash_attention_forward

    def flash():
        return op(q, kc.view(S * L, HKV, D), vc.view(S * L, HKV, D), cu_q, cu_k, 1, CTX, 0.0, False, False,
                  scale=1 / math.sqrt(D), seqused_k=used)

    ms = timeit(flash)
    kv_bytes = 2 * S * CTX * HKV * D * 2
    res["attn_flash_varlen_ms_per_layer"] = ms
    res["attn_flash_varlen_frac_of_bound"] = kv_bytes / (bw / 1) / 1e-3 / ms
    # the dense kernel (mha_fwd: split-KV, GQA query grouping) over all slots' keys [0, CTX),
    # as stic's default decode attention calls it (ragged slots handled by zero keys + lse)
    q4 = q.view(S, 1, H, D)

    def flash_dense():
        return op(q4, kc[:, :CTX], vc[:, :CTX], None, None, 1, CTX, 0.0, False, False, scale=1 / math.sqrt(D))

    ms = timeit(flash_dense)
    res["attn_flash_dense_ms_per_layer"] = ms
    res["attn_flash_dense_frac_of_bound"] = kv_bytes / bw / 1e-3 / ms
    od = flash_dense()
    res["attn_flash_dense_lse_shape"] = list(od[1].shape)
    res["dense_vs_varlen_max_abs_diff"] = (od[0].view(S, H, D).float() - flash()[0].view(S, H, D).float()).abs().max().item()
    # the same work with GQA folded into the query rows: (S*HKV) sequences of `rep` queries
    rep = H // HKV
    qg = q.view(S, HKV, rep, D)

    def flash_grouped():
        # each (slot, kv head) is one sequence of `rep` query rows over its own keys: keys must be
        # (S*HKV*L, 1, D), which the token-major layout is not; measure on a head-major copy
        return op(qg.reshape(S * HKV * rep, 1, D), kh, vh, cu_qg, cu_kg, rep, CTX, 0.0, False, False,
                  scale=1 / math.sqrt(D), seqused_k=used_g)

    kh = kc.permute(0, 2, 1, 3).contiguous().view(S * HKV * L, 1, D)
    vh = vc.permute(0, 2, 1, 3).contiguous().view(S * HKV * L, 1, D)
    cu_qg = torch.arange(S * HKV + 1, dtype=torch.int32, device=dev) * rep
    cu_kg = torch.arange(S * HKV + 1, dtype=torch.int32, device=dev) * L
    used_g = torch.full((S * HKV,), CTX, dtype=torch.int32, device=dev)
    try:
        ms = timeit(flash_grouped)
        res["attn_flash_grouped_ms_per_layer"] = ms
        res["attn_flash_grouped_frac_of_bound"] = kv_bytes / bw / 1e-3 / ms
        o1 = flash()[0].view(S, HKV, rep, D).float()
        o2 = flash_grouped()[0].view(S, HKV, rep, D).float()
        res["grouped_vs_plain_max_abs_diff"] = (o1 - o2).abs().max().item()
    except Exception as e:  # noqa: BLE001
        res["attn_flash_grouped_error"] = str(e)[:300]
    del kh, vh
    # SDPA reference on head-major, GQA expanded (what a naive decode does)
    kt = kc[:, :CTX].permute(0, 2, 1, 3)
    vt = vc[:, :CTX].permute(0, 2, 1, 3)
    qs = q.view(S, H, 1, D)
    ms = timeit(lambda: torch.nn.functional.scaled_dot_product_attention(qs, kt, vt, enable_gqa=True), iters=5)
    res["attn_sdpa_gqa_ms_per_layer"] = ms
    del kc, vc, kt, vt

    # GEMMs of one layer at M = S
    xs = torch.randn(S, C, dtype=bf, device=dev)
    w = {n: torch.randn(o, i, dtype=bf, device=dev) * 0.02 for n, (o, i) in
         {"q": (H * D, C), "k": (HKV * D, C), "v": (HKV * D, C), "o": (C, H * D), "gate": (F, C), "up": (F, C),
          "down": (C, F)}.items()}
    xf = torch.randn(S, F, dtype=bf, device=dev)

    def gemms():
        for n in ("q", "k", "v", "o", "gate", "up"):
            torch.nn.functional.linear(xs, w[n])
        torch.nn.functional.linear(xf, w["down"])

    ms = timeit(gemms)
    wbytes = sum(t.numel() for t in w.values()) * 2
    res["gemm_ms_per_layer"] = ms
    res["gemm_frac_of_bound"] = wbytes / bw / 1e-3 / ms
    wqkv = torch.cat([w["q"], w["k"], w["v"]], 0)
    wgu = torch.cat([w["gate"], w["up"]], 0)

    def gemms_fused():
        torch.nn.functional.linear(xs, wqkv)
        torch.nn.functional.linear(xs, w["o"])
        torch.nn.functional.linear(xs, wgu)
        torch.nn.functional.linear(xf, w["down"])

    ms = timeit(gemms_fused)
    res["gemm_fused_qkv_gateup_ms_per_layer"] = ms
    lm = torch.randn(V, C, dtype=bf, device=dev) * 0.02
    res["lm_head_ms"] = timeit(lambda: torch.nn.functional.linear(xs, lm).float())

    # elementwise work of one layer, eager (as decoder.cpp does it)
    nw = torch.ones(C, dtype=bf, device=dev)
    cos = torch.randn(S, 1, 1, D, dtype=bf, device=dev)
    sin = torch.randn(S, 1, 1, D, dtype=bf, device=dev)

    def rms(t):
        h = t.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5)
        return nw * h.to(bf)

    def rot(t):
        return torch.cat([-t[..., D // 2:], t[..., :D // 2]], -1)

    qq = torch.randn(S, H, 1, D, dtype=bf, device=dev)
    kk = torch.randn(S, HKV, 1, D, dtype=bf, device=dev)
    g = torch.randn(S, F, dtype=bf, device=dev)

    def elementwise():
        r = xs + rms(xs)
        _ = qq * cos + rot(qq) * sin
        _ = kk * cos + rot(kk) * sin
        r = r + rms(r)
        _ = torch.nn.functional.silu(g) * g

    ms = timeit(elementwise)
    res["elementwise_ms_per_layer_eager"] = ms
    g_ = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g_):
        elementwise()
    res["elementwise_ms_per_layer_graph"] = timeit(g_.replay)

    per_layer = (res["attn_flash_dense_ms_per_layer"] + res["gemm_ms_per_layer"] +
                 res["elementwise_ms_per_layer_graph"])
    res["model_step_ms_estimate"] = NL * per_layer + res["lm_head_ms"]
    res["bound_ms"] = (NL * (kv_bytes + wbytes) + lm.numel() * 2) / bw * 1e3
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
