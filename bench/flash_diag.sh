#!/usr/bin/env bash
# Prints the _flash_attention_forward schema of this PyTorch, tries a paged-KV decode call from
# Python, and runs a few decode steps of stic showing whether its flash path is taken.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import torch
print(torch.ops.aten._flash_attention_forward.default._schema)
S, H, Hkv, D, L = 4, 32, 8, 128, 512
q = torch.randn(S, H, D, device="cuda", dtype=torch.bfloat16)
kc = torch.randn(S, Hkv, L, D, device="cuda", dtype=torch.bfloat16)
vc = torch.randn_like(kc)
lens = torch.tensor([100, 200, 300, 512], device="cuda", dtype=torch.int32)
cu_k = torch.cat([torch.zeros(1, dtype=torch.int32, device="cuda"), lens.cumsum(0, dtype=torch.int32)])
cu_q = torch.arange(S + 1, dtype=torch.int32, device="cuda")
bt = torch.arange(S, dtype=torch.int32, device="cuda").view(S, 1)
try:
    out = torch.ops.aten._flash_attention_forward(q, kc.permute(0, 2, 1, 3), vc.permute(0, 2, 1, 3), cu_q, cu_k, 1, 512,
                                                  0.0, False, False, scale=D ** -0.5, block_table=bt)[0]
    ref = []
    for s in range(S):
        n = int(lens[s]); k = kc[s, :, :n].repeat_interleave(H // Hkv, 0); v = vc[s, :, :n].repeat_interleave(H // Hkv, 0)
        ref.append(torch.softmax((q[s].unsqueeze(1) @ k.transpose(-1, -2)).float() * D ** -0.5, -1).to(v.dtype) @ v)
    ref = torch.stack(ref).squeeze(2)
    print("paged flash OK, max err", (out.float() - ref.float()).abs().max().item())
except Exception as e:
    print("paged flash FAILED:", repr(e)[:600])
PY
