#!/usr/bin/env python3
"""Decode attention kernels side by side (GPU machine), at the benchmark's shapes: S slots of ~CTX
cached tokens in stic's token-major cache (S, L, Hkv, D), Mistral-7B heads (32 q / 8 kv of 128).

For each kernel: ms per layer, fraction of the copy-bandwidth bound of reading K and V, and the
max error against an fp32 reference on ragged lengths where it supports them. Which backend SDPA
picks for the decode shape is found by forcing each one in turn.
Usage: python3 bench/attn_micro.py [--s 64] [--ctx 3200]
"""
import argparse
import math

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from decode_micro import timeit  # bench/ is on the path when run as bench/attn_micro.py


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--s", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=3200)
    a = ap.parse_args()
    dev, bf = "cuda", torch.bfloat16
    S, CTX, H, HKV, D = a.s, a.ctx, 32, 8, 128
    L = (CTX + 256 + 255) // 256 * 256
    scale = 1 / math.sqrt(D)
    print(torch.cuda.get_device_name(), torch.__version__, f"S={S} ctx={CTX} L={L}")
    for name in ("_scaled_dot_product_cudnn_attention", "_cudnn_attention_forward", "_flash_attention_forward",
                 "_scaled_dot_product_flash_attention", "_efficient_attention_forward"):
        try:
            print("schema", getattr(torch.ops.aten, name).default._schema)
        except Exception as e:  # noqa: BLE001
            print("schema", name, "missing:", str(e)[:100])
    x = torch.empty(1 << 30, dtype=bf, device=dev)
    y = torch.empty_like(x)
    bw = 2 * x.numel() * 2 / (timeit(lambda: y.copy_(x), iters=10) * 1e-3)
    del x, y
    print(f"copy bandwidth {bw / 1e12:.2f} TB/s")
    kv_bytes = 2 * S * CTX * HKV * D * 2

    torch.manual_seed(0)
    kc = torch.randn(S, L, HKV, D, dtype=bf, device=dev)
    vc = torch.randn(S, L, HKV, D, dtype=bf, device=dev)
    q = torch.randn(S, H, D, dtype=bf, device=dev)
    # ragged lengths around CTX; keys past each length zeroed (stic's zero-tail invariant)
    lens = torch.randint(CTX - 300, CTX + 1, (S,), device=dev)
    lens[0] = CTX
    pos = torch.arange(L, device=dev)
    kc[pos[None, :] >= lens[:, None]] = 0
    vc[pos[None, :] >= lens[:, None]] = 0
    n = int(lens.max())
    # fp32 reference per slot
    qf = q.float().view(S, HKV, H // HKV, D)
    kf = kc[:, :n].float().permute(0, 2, 1, 3)
    vf = vc[:, :n].float().permute(0, 2, 1, 3)
    sc = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    sc = sc.masked_fill((pos[:n][None, :] >= lens[:, None]).view(S, 1, 1, n), float("-inf"))
    ref = torch.matmul(torch.softmax(sc, -1), vf).view(S, H, D)
    del kf, vf, sc

    def report(name, fn, fix=None):
        try:
            out = fn()
            o = out[0] if isinstance(out, (tuple, list)) else out
            o = fix(out) if fix else o
            err = (o.float().reshape(S, H, D) - ref).abs().max().item()
            ms = timeit(fn)
            print(f"{name:58s} {ms:7.3f} ms/layer  {kv_bytes / bw / 1e-3 / ms * 100:5.1f}% of bound  "
                  f"max err {err:.2e}")
        except Exception as e:  # noqa: BLE001
            print(f"{name:58s} failed: {str(e).splitlines()[0][:150]}")

    used = lens.to(torch.int32)
    cu_k = torch.arange(S + 1, dtype=torch.int32, device=dev) * L
    cu_q = torch.arange(S + 1, dtype=torch.int32, device=dev)
    fa = torch.ops.aten._flash_attention_forward
    report("FA2 varlen + seqused_k (stic default)",
           lambda: fa(q, kc.view(S * L, HKV, D), vc.view(S * L, HKV, D), cu_q, cu_k, 1, n, 0.0, False, False,
                      scale=scale, seqused_k=used))
    q4 = q.view(S, 1, H, D)
    stale = (n - lens).float().view(S, 1, 1)

    def dense_fix(out):
        o, lse = out[0], out[1]
        f = 1.0 / (1.0 - stale * torch.exp(-lse.reshape(S, H, 1)))
        return o.reshape(S, H, D).float() * f

    report("FA2 dense + zero-tail lse correction (STIC_DECODE_ATTN=dense)",
           lambda: fa(q4, kc[:, :n], vc[:, :n], None, None, 1, n, 0.0, False, False, scale=scale), dense_fix)
    # SDPA on the (S, H, n, D) token-major views, GQA native
    qs, kt, vt = q.view(S, H, 1, D), kc[:, :n].permute(0, 2, 1, 3), vc[:, :n].permute(0, 2, 1, 3)
    mask = torch.zeros(S, 1, 1, n, dtype=bf, device=dev).masked_fill(
        (pos[:n][None, :] >= lens[:, None]).view(S, 1, 1, n), float("-inf"))
    for be in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, None):
        label = be.name if be is not None else "auto"
        for with_mask in (False, True):
            def f(be=be, with_mask=with_mask):
                if be is None:
                    return torch.nn.functional.scaled_dot_product_attention(
                        qs, kt, vt, attn_mask=mask if with_mask else None, enable_gqa=True)
                with sdpa_kernel([be]):
                    return torch.nn.functional.scaled_dot_product_attention(
                        qs, kt, vt, attn_mask=mask if with_mask else None, enable_gqa=True)
            # without a mask the tails count (zero keys): correct it is not; timing only
            report(f"SDPA enable_gqa backend={label} mask={'yes' if with_mask else 'no (err: tails)'}", f)
    # cuDNN op directly, with the log-sum-exp (zero-tail correction) and GQA
    cu = torch.ops.aten._scaled_dot_product_cudnn_attention

    def cudnn_fix(out):
        o, lse = out[0], out[1]
        f = 1.0 / (1.0 - stale * torch.exp(-lse.float().reshape(S, H, 1)))
        return o.reshape(S, H, D).float() * f

    report("aten._scaled_dot_product_cudnn_attention + lse correction",
           lambda: cu(qs, kt, vt, None, True, 0.0, False, False, scale=scale), cudnn_fix)
    report("aten._scaled_dot_product_cudnn_attention, mask bias",
           lambda: cu(qs, kt, vt, mask, False, 0.0, False, False, scale=scale))
    try:
        out = cu(qs, kt, vt, None, True, 0.0, False, False, scale=scale)
        print("cudnn outputs:", [tuple(t.shape) if hasattr(t, "shape") else t for t in out],
              "lse dtype", out[1].dtype)
    except Exception as e:  # noqa: BLE001
        print("cudnn call failed:", str(e)[:200])


if __name__ == "__main__":
    main()
