#!/usr/bin/env python3
"""Experiment (docs/world.md, "Session 6"): does a world model learn yes/no existence answers
when its base records carry many more of them?

Writes a copy of WORLD/data/base_train.json in which every record starts with K extra existence
turns about its image ("Is there a pink star in the image?" -> "Yes" / "No", each a fair coin; the
negatives drawn uniformly from the colour x shape combinations absent from the scene), built from
WORLD/gt/base_scenes.jsonl. The existing turns follow unchanged.
  python3 bench/world_existence_probe.py WORLD OUT.json [K] [SEED]
"""
import json
import random
import sys

SUFFIX = "\nAnswer the question using a single word or phrase."


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def main():
    world, out = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    scenes = {}
    colors, shapes = set(), set()
    for line in open(f"{world}/gt/base_scenes.jsonl"):
        s = json.loads(line)
        scenes[s["id"]] = s
        for o in s["objects"]:
            colors.add(o["color"])
            shapes.add(o["shape"])
    combos = sorted((c, sh) for c in colors for sh in shapes)
    records = json.load(open(f"{world}/data/base_train.json"))
    for r in records:
        present = sorted({(o["color"], o["shape"]) for o in scenes[r["id"]]["objects"]})
        absent = [c for c in combos if c not in set(present)]
        turns = []
        for _ in range(k):
            yes = rng.random() < 0.5
            c, sh = rng.choice(present) if yes else rng.choice(absent)
            q = f"Is there {article(c)} {c} {sh} in the image?{SUFFIX}"
            turns += [{"from": "human", "value": q}, {"from": "gpt", "value": "Yes" if yes else "No"}]
        conv = r["conversations"]
        conv[0]["value"] = conv[0]["value"].replace("<image>\n", "", 1)
        turns[0]["value"] = "<image>\n" + turns[0]["value"]
        r["conversations"] = turns + conv
    json.dump(records, open(out, "w"), indent=1)
    print(f"{out}: {len(records)} records, {k} existence turns each")


if __name__ == "__main__":
    main()
