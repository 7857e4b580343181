#!/usr/bin/env python3
"""Does a world model answer POPE questions from text it can read, when it cannot from the image?

For the first N held-out images of a pipeline run, asks each POPE question of the world's eval
set twice with `stic chat` (greedy, vicuna_v1 format written out with --template raw):
  plain:      USER: <image>\\nQUESTION  (as `stic eval` asks it)
  own:        the model's own description of the image (from the run's eval/per_item.jsonl, the
              `describe` request) as an earlier turn, then the question -- describe-then-answer
              by hand, the idea of describe-and-respond (DaR)
  truth:      the ground-truth description as that earlier turn (an upper bound for "own")
and prints accuracy and yes-ratio of each. A diagnostic, not a benchmark (docs/world.md,
"Session 6").
  python3 bench/world_pope_context.py STIC RUN_DIR [N_IMAGES]   (RUN_DIR: a `stic pipeline` workdir)
"""
import json
import subprocess
import sys

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
SUFFIX = "\nAnswer the question using a single word or phrase."


def main():
    stic, run = sys.argv[1], sys.argv[2]
    n_images = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    model = f"{run}/instruct" if json.load(open(f"{run}/recipe.json"))["instruct"]["max_steps"] > 0 else f"{run}/base"
    items = [json.loads(l) for l in open(f"{run}/eval/per_item.jsonl")]
    desc = {r["image"]: r["text"] for r in items if r["type"] == "describe"}
    requests = {json.loads(l)["id"]: json.loads(l) for l in open(f"{run}/world/eval/requests.jsonl")}
    truth = {}
    for l in open(f"{run}/world/gt/descriptions.jsonl"):
        r = json.loads(l)
        truth[r["image"]] = (r["prompt"], r["description"])
    images = sorted(desc)[:n_images]
    pope = [r for r in items if r["type"] == "pope" and r["image"] in images]
    stats = {k: [0, 0, 0] for k in ("plain", "own", "truth")}  # correct, yes, n
    for r in pope:
        q = requests[r["id"]]["prompt"].replace("<image>\n", "")
        dprompt, tdesc = truth[r["image"]]
        for mode in stats:
            if mode == "plain":
                p = f"{SYSTEM} USER: <image>\n{q} ASSISTANT:"
            else:
                d = desc[r["image"]] if mode == "own" else tdesc
                p = f"{SYSTEM} USER: <image>\n{dprompt} ASSISTANT: {d}</s>USER: {q} ASSISTANT:"
            out = subprocess.run([stic, "chat", "--model", model, "--image", f"{run}/world/images/{r['image']}",
                                  "--prompt", p, "--template", "raw", "--max-new-tokens", "4", "--json"],
                                 capture_output=True, text=True, check=True)
            a = json.loads(out.stdout)["text"].strip().lower()
            yes = a.startswith("yes")
            s = stats[mode]
            s[0] += (yes and r["answer"] == "yes") or (a.startswith("no") and r["answer"] == "no")
            s[1] += yes
            s[2] += 1
    print(f"{model}: {len(pope)} POPE questions on {len(images)} held-out images")
    print("| earlier turn | accuracy | yes-ratio |\n|---|---|---|")
    names = {"plain": "none (as stic eval asks)", "own": "the model's own description", "truth": "the true description"}
    for k, (c, y, n) in stats.items():
        print(f"| {names[k]} | {100 * c / n:.1f} | {100 * y / n:.1f} |")


if __name__ == "__main__":
    main()
