#!/usr/bin/env python3
"""Experiment (docs/world.md, "Session 7"): the world's requests asked before the image.

A from-scratch decoder answers "Is there a red circle?" at chance when the image comes first
(LLaVA's layout): the answer position would have to look the named object up among the image
tokens, a content-addressed lookup it does not find in the CPU budget. With the question first,
each image token can attend back to the question and compare locally. This rewrites a built
world in place so that every first request comes before its image ("<request>\\n<image>"), for
training with `train-sft --image-marker keep`, and (K > 0) adds K question-first records per base
image to the pretraining data: "Where is the <category>?" (categories unique in the image) and
"Is there <category> in the image?" (a fair coin; negatives among the absent colour x shape
combinations, half of them sharing a colour or shape with an object).
  python3 bench/world_qfirst_probe.py WORLD [K] [SEED]
"""
import json
import random
import sys

SUFFIX = "\nAnswer the question using a single word or phrase."


def article(w):
    return "an" if w[0] in "aeiou" else "a"


def image_after(text):
    return text.replace("<image>\n", "", 1) + "\n<image>" if text.startswith("<image>\n") else text


def main():
    world = sys.argv[1]
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    for name in ("base_train", "eval_sft", "base_pretrain", "eval_pretrain", "stage2_sft"):
        path = f"{world}/data/{name}.json"
        recs = json.load(open(path))
        for r in recs:
            r["conversations"][0]["value"] = image_after(r["conversations"][0]["value"])
        if name == "base_pretrain" and k > 0:
            scenes = [json.loads(l) for l in open(f"{world}/gt/base_scenes.jsonl")]
            colors = sorted({o["color"] for s in scenes for o in s["objects"]})
            shapes = sorted({o["shape"] for s in scenes for o in s["objects"]})
            extra = []
            for s in scenes:
                objs = s["objects"]
                cats = [(o["color"], o["shape"]) for o in objs]
                for j in range(k):
                    if j % 2 == 0 and any(cats.count(c) == 1 for c in cats):
                        o = rng.choice([o for o in objs if cats.count((o["color"], o["shape"])) == 1])
                        q, a = f"Where is the {o['color']} {o['shape']}?", o["position"]
                    else:
                        if rng.random() < 0.5:
                            c, sh = rng.choice(cats)
                            a = "Yes"
                        else:
                            while True:
                                if rng.random() < 0.5:
                                    c0, s0 = rng.choice(cats)
                                    c, sh = (c0, rng.choice(shapes)) if rng.random() < 0.5 else (rng.choice(colors), s0)
                                else:
                                    c, sh = rng.choice(colors), rng.choice(shapes)
                                if (c, sh) not in cats:
                                    break
                            a = "No"
                        q = f"Is there {article(c)} {c} {sh} in the image?"
                    extra.append({"id": f"{s['id']}-qf{j}", "image": s["image"],
                                  "conversations": [{"from": "human", "value": q + SUFFIX + "\n<image>"},
                                                    {"from": "gpt", "value": a}]})
            recs += extra
            rng.shuffle(recs)
        json.dump(recs, open(path, "w"), indent=1)
    lines = []
    for l in open(f"{world}/eval/requests.jsonl"):
        j = json.loads(l)
        j["prompt"] = image_after(j["prompt"])
        lines.append(json.dumps(j))
    open(f"{world}/eval/requests.jsonl", "w").write("\n".join(lines) + "\n")
    print(f"{world}: requests before the image; {k} question-first pretraining records per base image")


if __name__ == "__main__":
    main()
