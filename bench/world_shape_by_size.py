#!/usr/bin/env python3
"""Shape and colour accuracy of a world model's descriptions, by the true object's size.

Each mention "[size] COLOUR SHAPE [sits|is ...] in the PLACE" in a description is matched to the object that
really is in that place (scenes/ of the world), so a wrong shape counts as a wrong shape rather
than as a hallucination plus a miss (stic's own metrics match by colour + shape). Tells whether
shape errors come from resolution (small objects only) or from the model.
    python3 bench/world_shape_by_size.py WORLD_DIR EVAL_DIR/per_item.jsonl [...]
"""
import collections
import json
import re
import sys

SHAPES = "circle square triangle star heart diamond hexagon cross".split()
COLORS = "red orange yellow green blue purple pink white".split()
SIZES = "small medium large".split()
PLACES = ["top left", "top center", "top right", "middle left", "center", "middle right",
          "bottom left", "bottom center", "bottom right"]
MENTION = re.compile(r"(?:(small|medium|large)\s+)?(%s)\s+(%s)s?\s+(?:[a-z]+\s+){0,2}?in the (%s)" % (
    "|".join(COLORS), "|".join(SHAPES), "|".join(PLACES)))


def score(world, per_item):
    shape, colour = collections.Counter(), collections.Counter()
    n = collections.Counter()
    for line in open(per_item):
        j = json.loads(line)
        if j.get("type") != "describe":
            continue
        scene = json.load(open(f"{world}/scenes/" + j["image"].replace(".png", ".json")))
        at = {o["position"]: o for o in scene["objects"]}
        for m in MENTION.finditer(j.get("text", "")):
            _, c, s, p = m.groups()
            o = at.get(p)
            if o is None:
                continue
            n[o["size"]] += 1
            shape[o["size"]] += o["shape"] == s
            colour[o["size"]] += o["color"] == c
    return n, shape, colour


def main():
    world = sys.argv[1]
    for path in sys.argv[2:]:
        n, shape, colour = score(world, path)
        print(path)
        if not n:
            print("  no 'COLOUR SHAPE in the PLACE' mentions")
        for s in SIZES:
            if n[s]:
                print(f"  {s:7s} {n[s]:4d} mentions at a real object: shape {100 * shape[s] / n[s]:5.1f}%, "
                      f"colour {100 * colour[s] / n[s]:5.1f}%")


if __name__ == "__main__":
    main()
