#!/usr/bin/env python3
"""Experiment (docs/world.md, "Session 7"): can a from-scratch decoder look an object up by name?

The world-tiny base model describes the objects it sees but answers "Is there a red circle in the
image?" at chance. This toy isolates the question: 9 frozen "cell" tokens (an 8 x 8 colour x
shape world, 1-4 objects; each cell's feature = colour + shape + place vectors + noise, as a
vision tower that already sees would give) -> a trainable 2-layer projector -> a decoder of
world-tiny's size (4 layers, width 128, 4 heads, MLP 352; learned positions, pre-LayerNorm),
AdamW lr 1e-3 after 30 warmup steps, 16 examples per step. Tasks:
  desc   every object, in reading order: colour shape place ; ...
  exist  "exist c s ?" -> yes / no (half the negatives share a colour or a shape with an object)
  where  "where c s ?" -> the object's place (looked up by its name)
  color  "color? s p ?" -> the colour of the object at place p (looked up by its place)
  texist, twhere  the same questions about the scene written out as text before them (a blank
                  image): a lookup in the text, as describe-and-respond needs
--pre-tasks/--pre-steps train on other tasks first (e.g. the text lookups, then the image ones).
Layouts: image-first (LLaVA: the request after the image), question-first (the request before
the image, then an answer marker), or mix (each step one or the other). --one-token names an
object by one colour-shape token instead of two. Prints held-out accuracy (400 examples per
task) ten times. CPU, ~25 s per 1000 steps; deterministic for a seed.
  python3 bench/world_lookup_toy.py --tasks exist,where --steps 2000 --layout question-first
"""
import argparse
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

NC, NS, NP = 8, 8, 9             # colours, shapes, cells
D, L, H, FF, VD = 128, 4, 4, 352, 96

ap = argparse.ArgumentParser()
ap.add_argument("--tasks", default="exist", help="comma-separated: desc, exist, where, color")
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--layout", default="image-first", choices=["image-first", "question-first", "mix"])
ap.add_argument("--one-token", action="store_true", help="name an object by one colour-shape token")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--pre-tasks", default="", help="first train on these (e.g. texist,twhere) for --pre-steps")
ap.add_argument("--pre-steps", type=int, default=0)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rng = random.Random(args.seed)

V = ["<ans>", "<pad>", "<eos>", "desc", "exist", "where", "color?", "yes", "no", ";", "?"]
V += [f"c{i}" for i in range(NC)] + [f"s{i}" for i in range(NS)] + [f"p{i}" for i in range(NP)]
V += [f"cs{i}" for i in range(NC * NS)]
ID = {w: i for i, w in enumerate(V)}
g = torch.Generator().manual_seed(1234)  # the frozen "tower": fixed feature vectors
A_COLOR = torch.randn(NC, VD, generator=g)
A_SHAPE = torch.randn(NS, VD, generator=g)
A_BG = torch.randn(VD, generator=g)
A_PLACE = torch.randn(NP, VD, generator=g) * 0.5


def scene():
    cells = rng.sample(range(NP), rng.randint(1, 4))
    return [(p, rng.randrange(NC), rng.randrange(NS)) for p in sorted(cells)]


def features(sc):
    f = A_BG.expand(NP, VD).clone() + A_PLACE
    for p, c, s in sc:
        f[p] = A_COLOR[c] + A_SHAPE[s] + A_PLACE[p]
    return f + 0.3 * torch.randn(NP, VD)


def name(c, s):
    return ["<pad>", f"cs{c * NS + s}"] if args.one_token else [f"c{c}", f"s{s}"]


def sample(task, sc=None):
    sc = sc or scene()
    if task == "desc":
        q, a = ["desc", "<pad>", "<pad>", "?"], []
        for p, c, s in sc:
            a += [f"c{c}", f"s{s}", f"p{p}", ";"]
        a += ["<eos>"]
    elif task == "exist":
        present = {(c, s) for _, c, s in sc}
        if rng.random() < 0.5:
            c, s = rng.choice(sorted(present))
            ans = "yes"
        else:
            while True:
                if rng.random() < 0.5:  # share the colour or the shape of an object
                    _, c0, s0 = rng.choice(sc)
                    c, s = (c0, rng.randrange(NS)) if rng.random() < 0.5 else (rng.randrange(NC), s0)
                else:
                    c, s = rng.randrange(NC), rng.randrange(NS)
                if (c, s) not in present:
                    break
            ans = "no"
        q, a = ["exist"] + name(c, s) + ["?"], [ans, "<eos>"]
    elif task == "where":
        p, c, s = rng.choice(sc)
        q, a = ["where"] + name(c, s) + ["?"], [f"p{p}", "<eos>"]
    elif task == "color":
        p, c, s = rng.choice(sc)
        q, a = ["color?", f"s{s}", f"p{p}", "?"], [f"c{c}", "<eos>"]
    elif task in ("texist", "twhere"):  # text only: the scene written out, then the question
        text = []
        for p, c, s in sc:
            text += [f"c{c}", f"s{s}", f"p{p}", ";"]
        _, q, a = sample(task[1:], sc)
        return features([]), [ID[w] for w in text] + q, a
    else:
        raise SystemExit(f"unknown task {task}")
    return features(sc), [ID[w] for w in q], [ID[w] for w in a]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.att = nn.MultiheadAttention(D, H, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(D, FF), nn.SiLU(), nn.Linear(FF, D))

    def forward(self, x, mask):
        h = self.n1(x)
        x = x + self.att(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.ff(self.n2(x))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.pos = nn.Embedding(len(V), D), nn.Embedding(64, D)
        self.proj = nn.Sequential(nn.Linear(VD, D), nn.GELU(), nn.Linear(D, D))
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.norm, self.head = nn.LayerNorm(D), nn.Linear(D, len(V), bias=False)

    def forward(self, f, tok, qlen):  # qlen text tokens, then the image, then the rest
        e = self.emb(tok)
        x = torch.cat([e[:, :qlen], self.proj(f), e[:, qlen:]], 1)
        t = x.shape[1]
        x = x + self.pos(torch.arange(t))
        mask = torch.triu(torch.full((t, t), float("-inf")), 1)
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.norm(x))


def batch(tasks, qf):
    # image-first: image, question, answer; question-first: question (4 tokens), image, <ans>,
    # answer. The answer's first token is predicted at position NP + len(q) - 1 + qf.
    S = [sample(t) for t in tasks]
    T = max(len(q) + len(a) + qf for _, q, a in S)
    tok = torch.zeros(len(S), T, dtype=torch.long)
    lab = torch.full((len(S), NP + T), -100)
    for i, (_, q, a) in enumerate(S):
        seq = q + ([ID["<ans>"]] if qf else []) + a
        tok[i, :len(seq)] = torch.tensor(seq)
        for j, w in enumerate(a):
            lab[i, NP + len(q) + j - 1 + qf] = w
    return torch.stack([f for f, _, _ in S]), tok, lab, S


def accuracy(task, qf, n=400):
    f, tok, _, S = batch([task] * n, qf)
    with torch.no_grad():
        logits = model(f, tok, 4 if qf else 0)
    return sum(int(logits[i, NP + len(q) - 1 + qf].argmax()) == a[0] for i, (_, q, a) in enumerate(S)) / n


tasks = args.tasks.split(",")
if args.layout != "image-first" and any(t[0] == "t" for t in tasks + (args.pre_tasks.split(",") if args.pre_tasks else [])):
    raise SystemExit("text tasks (texist, twhere) need --layout image-first")
model = Decoder()
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
fixed_qf = 1 if args.layout == "question-first" else 0
pre = args.pre_tasks.split(",") if args.pre_tasks else []
for step in range(1, args.pre_steps + args.steps + 1):
    for group in opt.param_groups:
        group["lr"] = args.lr * min(1, step / 30)
    qf = rng.randrange(2) if args.layout == "mix" else fixed_qf
    now = pre if step <= args.pre_steps else tasks
    if now is pre:
        qf = 0
    f, tok, lab, _ = batch([rng.choice(now) for _ in range(16)], qf)
    loss = F.cross_entropy(model(f, tok, 4 if qf else 0).reshape(-1, len(V)), lab.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % max(1, (args.pre_steps + args.steps) // 10) == 0:
        for lq in ((0, 1) if args.layout == "mix" else (fixed_qf,)):
            shown = [t for t in ("exist", "where", "color", "texist", "twhere") if t in tasks + pre]
            acc = " ".join(f"{t} {accuracy(t, 0 if t[0] == 't' else lq):.3f}" for t in shown)
            print(f"step {step} {'question-first' if lq else 'image-first'}: loss {loss.item():.3f} {acc}", flush=True)
