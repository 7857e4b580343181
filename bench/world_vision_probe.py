#!/usr/bin/env python3
"""Can the world's vision tower learn what the captions ask of it?  A direct probe.

Trains a CLIP-style ViT of the world-tiny shape from scratch as a per-cell classifier (for each
of the 9 grid cells: empty or which shape / which colour) on the base images and reports held-out
shape and colour accuracy at occupied cells as training goes. This separates "the ViT cannot learn
shapes from this data in this many samples" from "the language-model loss gives it too weak a
signal". Needs python3-torch, python3-numpy, python3-pil (Debian packages); CPU is fine.

  /usr/bin/python3 bench/world_vision_probe.py WORLD_DIR [--patch 8] [--width 96] [--layers 4]
      [--steps 1500] [--batch 16] [--lr 2e-3] [--train N] [--sincos SCALE] [--cnn] [--export OUT_MODEL]
(/usr/bin/python3: Debian's interpreter, where python3-torch is installed.) docs/world.md,
"Session 4", has the results.
"""
import argparse, json, math, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

SHAPES = ["circle", "square", "triangle", "star", "heart", "diamond", "hexagon", "cross"]
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "white"]


def load_pool(world, pool, limit=None, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    names = sorted(os.listdir(os.path.join(world, "scenes", pool)))
    if limit:
        names = names[:limit]
    xs, shp, col = [], [], []
    for n in names:
        s = json.load(open(os.path.join(world, "scenes", pool, n)))
        im = np.asarray(Image.open(os.path.join(world, "images", s["image"])).convert("RGB"), dtype=np.float32) / 255.0
        xs.append(im.transpose(2, 0, 1))
        a = np.zeros(9, np.int64)
        c = np.zeros(9, np.int64)
        for o in s["objects"]:
            k = o["row"] * 3 + o["col"]
            a[k] = SHAPES.index(o["shape"]) + 1
            c[k] = COLORS.index(o["color"]) + 1
        shp.append(a)
        col.append(c)
    x = torch.tensor(np.stack(xs))
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x, torch.tensor(np.stack(shp)), torch.tensor(np.stack(col))


class Block(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


def sincos_2d(grid, d):
    """MAE-style 2D sine-cosine position table (grid*grid, d): half the channels for the row,
    half for the column."""
    def one(pos, dd):
        omega = 1.0 / 10000 ** (torch.arange(dd // 2, dtype=torch.float32) / (dd // 2))
        out = pos[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], 1)
    r, c = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    return torch.cat([one(r.reshape(-1), d // 2), one(c.reshape(-1), d // 2)], 1)


class ViTProbe(nn.Module):
    def __init__(self, size, patch, d, layers, heads, mlp, sincos=0.0):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch, bias=False)
        n = (size // patch) ** 2
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.pos = nn.Parameter(torch.randn(n + 1, d) * 0.02)
        if sincos > 0:  # the patch rows start as a scaled 2D sine-cosine table instead of noise
            with torch.no_grad():
                self.pos[1:] = sincos * sincos_2d(size // patch, d)
        self.pre = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([Block(d, heads, mlp) for _ in range(layers)])
        self.q = nn.Parameter(torch.randn(9, d) * 0.02)  # one query per grid cell
        self.pool = nn.MultiheadAttention(d, heads, batch_first=True)
        self.shape_head, self.color_head = nn.Linear(d, 9), nn.Linear(d, 9)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], 1, -1), t], 1) + self.pos
        t = self.pre(t)
        for b in self.blocks[:-1]:  # penultimate layer's features, as LLaVA takes them
            t = b(t)
        t = t[:, 1:]
        q = self.q.expand(t.shape[0], -1, -1)
        h = self.pool(q, t, t, need_weights=False)[0]
        return self.shape_head(h), self.color_head(h)


class CNNProbe(nn.Module):
    """A control: a small CNN pooled to the 3x3 grid (convolutions know locality; a ViT must learn it)."""
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.GELU(),
                                 nn.Conv2d(64, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, d, 3, padding=1, stride=2), nn.GELU(),
                                 nn.AdaptiveAvgPool2d(3))
        self.shape_head, self.color_head = nn.Linear(d, 9), nn.Linear(d, 9)

    def forward(self, x):
        h = self.net(x).flatten(2).transpose(1, 2)
        return self.shape_head(h), self.color_head(h)


def read_safetensors(path):
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", f"{k}: only F32 checkpoints ({v['dtype']})"
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(v["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    import struct
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        b = tensors[k].contiguous().numpy().astype(np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def export_vision(m, model_dir, out_dir):
    """Copies the llava-hf folder model_dir to out_dir with the probe's ViT as its vision tower
    (HF CLIP key names; the probe's head is dropped). The ViT's last layer, which LLaVA does not
    use (penultimate features), keeps the folder's weights."""
    import shutil
    shutil.copytree(model_dir, out_dir, dirs_exist_ok=True)
    t = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    pre = "vision_tower.vision_model."
    def put(k, v):
        assert t[pre + k].shape == v.shape, (k, t[pre + k].shape, v.shape)
        t[pre + k] = v.detach().float().clone()
    put("embeddings.class_embedding", m.cls)
    put("embeddings.patch_embedding.weight", m.patch.weight)
    put("embeddings.position_embedding.weight", m.pos)
    put("pre_layrnorm.weight", m.pre.weight)
    put("pre_layrnorm.bias", m.pre.bias)
    for i, b in enumerate(m.blocks):
        L = f"encoder.layers.{i}."
        q, k, v = b.attn.in_proj_weight.chunk(3, 0)
        qb, kb, vb = b.attn.in_proj_bias.chunk(3, 0)
        for name, w, bias in (("q_proj", q, qb), ("k_proj", k, kb), ("v_proj", v, vb),
                              ("out_proj", b.attn.out_proj.weight, b.attn.out_proj.bias)):
            put(L + f"self_attn.{name}.weight", w)
            put(L + f"self_attn.{name}.bias", bias)
        for name, mod in (("layer_norm1", b.ln1), ("layer_norm2", b.ln2), ("mlp.fc1", b.fc1), ("mlp.fc2", b.fc2)):
            put(L + f"{name}.weight", mod.weight)
            put(L + f"{name}.bias", mod.bias)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), t)
    print(f"wrote {out_dir} (vision tower from the probe)")
    return {k[len(pre):]: v for k, v in read_safetensors(os.path.join(out_dir, "model.safetensors")).items() if k.startswith(pre)}


def clip_penultimate(w, x, heads, layers):
    """HF CLIPVisionModel's hidden_states[-2] (CLS dropped), written from the exported tensors
    alone: checks the key mapping of export_vision against the probe's own forward."""
    F_ = torch.nn.functional
    t = F_.conv2d(x, w["embeddings.patch_embedding.weight"], stride=w["embeddings.patch_embedding.weight"].shape[-1])
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([w["embeddings.class_embedding"].expand(t.shape[0], 1, -1), t], 1) + w["embeddings.position_embedding.weight"]
    ln = lambda h, n: F_.layer_norm(h, h.shape[-1:], w[n + ".weight"], w[n + ".bias"], 1e-5)
    lin = lambda h, n: F_.linear(h, w[n + ".weight"], w[n + ".bias"])
    t = ln(t, "pre_layrnorm")
    d = t.shape[-1]
    for i in range(layers - 1):
        L = f"encoder.layers.{i}."
        h = ln(t, L + "layer_norm1")
        q, k, v = (lin(h, L + f"self_attn.{n}_proj").view(t.shape[0], -1, heads, d // heads).transpose(1, 2) for n in "qkv")
        a = torch.softmax(q @ k.transpose(-1, -2) * (d // heads) ** -0.5, -1) @ v
        t = t + lin(a.transpose(1, 2).reshape(t.shape), L + "self_attn.out_proj")
        h = lin(ln(t, L + "layer_norm2"), L + "mlp.fc1")
        t = t + lin(h * torch.sigmoid(1.702 * h), L + "mlp.fc2")
    return t[:, 1:]


def accuracy(model, x, s, c, bs=200):
    model.eval()
    ok_s = ok_c = n = 0
    with torch.no_grad():
        for i in range(0, len(x), bs):
            ls, lc = model(x[i:i + bs])
            occ = s[i:i + bs] > 0
            ok_s += ((ls[..., 1:].argmax(-1) + 1 == s[i:i + bs]) & occ).sum().item()
            ok_c += ((lc[..., 1:].argmax(-1) + 1 == c[i:i + bs]) & occ).sum().item()
            n += occ.sum().item()
    model.train()
    return ok_s / n, ok_c / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("world")
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train", type=int, default=0, help="use only the first N base images (0 = all)")
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--sincos", type=float, default=0.0, help="init the position embedding as this scale x 2D sin-cos")
    ap.add_argument("--cnn", action="store_true", help="the CNN control instead of the ViT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--export", default="", help="write WORLD/model with the trained ViT as its vision tower to this folder "
                    "(images normalised with the model's CLIP mean/std, as LLaVA sees them)")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    norm = {}
    if a.export:
        pc = json.load(open(os.path.join(a.world, "model", "preprocessor_config.json")))
        norm = {"mean": tuple(pc["image_mean"]), "std": tuple(pc["image_std"])}
    x, s, c = load_pool(a.world, "base", a.train or None, **norm)
    xe, se, ce = load_pool(a.world, "eval", **norm)
    size = x.shape[-1]
    m = CNNProbe(a.width) if a.cnn else ViTProbe(size, a.patch, a.width, a.layers, a.heads, a.mlp, a.sincos)
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.0)
    warm = max(1, int(0.03 * a.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / a.steps))))
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    print(f"probe: {len(x)} train / {len(xe)} eval images, {size}px, patch {a.patch}, ViT {a.width}w x {a.layers}L")
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(x), (a.batch,), generator=g)
        ls, lc = m(x[idx])
        occ = s[idx].reshape(-1) > 0  # shape/colour loss at occupied cells only (the captions name
        # each object's place, then its attributes), plus empty-vs-occupied everywhere
        ls, lc = ls.reshape(-1, 9), lc.reshape(-1, 9)
        loss = (F.cross_entropy(ls[occ], s[idx].reshape(-1)[occ]) + F.cross_entropy(lc[occ], c[idx].reshape(-1)[occ]) +
                F.binary_cross_entropy_with_logits(ls[:, 0], (~occ).float()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % a.every == 0 or step == a.steps:
            sa, ca = accuracy(m, xe, se, ce)
            print(f"step {step:5d}  loss {loss.item():.3f}  eval shape acc {100 * sa:5.1f}%  colour acc {100 * ca:5.1f}%  "
                  f"({time.time() - t0:.0f} s)", flush=True)
    if a.export:
        w = export_vision(m, os.path.join(a.world, "model"), a.export)
        m.eval()
        with torch.no_grad():
            t = m.patch(xe[:8]).flatten(2).transpose(1, 2)
            t = m.pre(torch.cat([m.cls.expand(8, 1, -1), t], 1) + m.pos)
            for b in m.blocks[:-1]:
                t = b(t)
            diff = (clip_penultimate(w, xe[:8], a.heads, a.layers) - t[:, 1:]).abs().max().item()
        print(f"exported features vs the probe's: max abs diff {diff:.2e}")
        assert diff < 1e-4, "export_vision: the exported tower does not reproduce the probe"


if __name__ == "__main__":
    main()
