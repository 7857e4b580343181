#!/usr/bin/env bash
# End-to-end tests of the paper's recipe (recipes/stic-llava16-mistral7b.yaml) run by `stic
# pipeline` on an external checkpoint: the committed tiny LLaVA-NeXT-Mistral (anyres), real
# photos, a small instruction set and a POPE file, with --set overrides for the paths and sizes.
# --dry-run names every missing input and exits 1 before any work, counts the pools and writes
# nothing; the full run goes through pref, dpo, describe, infuse, sft2, six evaluations and the
# report; a kill -9 in the middle resumes to the same pairs; the stage-2 adapter loads in chat.
# Usage: paper_run_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/next_mistral
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); [ -n "${KEEP:-}" ] || trap 'rm -rf "$T"' EXIT; echo "work: $T"
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

mkdir -p "$T/imgs" "$T/pope" "$T/s2img"
for f in china.jpg camera.png chelsea.png coffee.png flower.jpg rocket.jpg; do cp "$IMG/$f" "$T/imgs/"; done
for f in china.jpg camera.png coffee.png flower.jpg; do cp "$IMG/$f" "$T/s2img/"; done
echo "not an image" >"$T/imgs/notes.txt"
cat >"$T/sft.json" <<'JSON'
[
 {"id": "a", "image": "china.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A temple."}]},
 {"id": "b", "image": "camera.png", "conversations": [{"from": "human", "value": "<image>\nWho holds the camera?"}, {"from": "gpt", "value": "A man."}]},
 {"id": "c", "conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4."}]},
 {"id": "d", "image": "coffee.png", "conversations": [{"from": "human", "value": "<image>\nWhat drink is this?"}, {"from": "gpt", "value": "Coffee."}]},
 {"id": "e", "image": "flower.jpg", "conversations": [{"from": "human", "value": "Name the flower.\n<image>"}, {"from": "gpt", "value": "A daisy."}]},
 {"id": "f", "image": "china.jpg", "conversations": [{"from": "human", "value": "<image>\nWhich colour dominates?"}, {"from": "gpt", "value": "Red."}]},
 {"id": "a", "image": "rocket.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat flies?"}, {"from": "gpt", "value": "A rocket."}]}
]
JSON
SFX='\nAnswer the question using a single word or phrase.'
cat >"$T/pope_q.jsonl" <<JSON
{"question_id": 1, "image": "china.jpg", "text": "Is there a temple in the image?$SFX", "category": "random"}
{"question_id": 2, "image": "camera.png", "text": "Is there a dog in the image?$SFX", "category": "random"}
{"question_id": 3, "image": "chelsea.png", "text": "Is there a cat in the image?$SFX", "category": "random"}
JSON
cat >"$T/pope/coco_pope_random.json" <<'JSON'
{"question_id": 1, "image": "china.jpg", "text": "Is there a temple in the image?", "label": "yes"}
{"question_id": 2, "image": "camera.png", "text": "Is there a dog in the image?", "label": "no"}
{"question_id": 3, "image": "chelsea.png", "text": "Is there a cat in the image?", "label": "yes"}
JSON

# the paper's recipe, scaled to the tiny model: paths and sizes by --set
SETS=(--set device=cpu --set dtype=fp32 --set threads=2 --set model.path=$M
      --set pref.image_dir=$T/imgs --set pref.limit=4 --set pref.max_new_tokens=6 --set pref.batch_size=8
      --set dpo.batch_size=2 --set dpo.grad_accum=1 --set dpo.lr=1e-3 --set dpo.lora_r=4 --set dpo.lora_alpha=8
      --set dpo.save_every=1
      --set describe.data=$T/sft.json --set describe.image_dir=$T/s2img --set describe.limit=4
      --set describe.max_new_tokens=6 --set describe.batch_size=8
      --set sft2.batch_size=2 --set sft2.grad_accum=1 --set sft2.gradient_checkpointing=false
      --set eval.batch_size=8 --set eval.dar_max_new_tokens=6
      --set benchmarks.pope.data=$T/pope_q.jsonl --set benchmarks.pope.annotations=$T/pope
      --set benchmarks.pope.image_dir=$T/imgs --set benchmarks.pope.max_new_tokens=3
      --set benchmarks.scienceqa=off --set benchmarks.textvqa=off --set benchmarks.mmbench=off
      --set benchmarks.llava-bench=off --set benchmarks.mm-vet=off)
P=("$STIC" pipeline --recipe recipes/stic-llava16-mistral7b.yaml --quiet "${SETS[@]}")

# --dry-run: the recipe as shipped (none of its paths exist here) names each missing input
"$STIC" pipeline --recipe recipes/stic-llava16-mistral7b.yaml --dry-run --card H200 --set device=cpu \
  --set model.path=$M --workdir "$T/dry0" >"$T/dry0.txt" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "FAIL  pref.image_dir playground/data/coco/train2014" "$T/dry0.txt" \
  && grep -q "FAIL  describe.data" "$T/dry0.txt" && grep -q "FAIL  benchmarks.mm-vet" "$T/dry0.txt" \
  && grep -q "8 input problem(s)" "$T/dry0.txt" && [ ! -e "$T/dry0" ] \
  && ok "dry-run: the shipped paths are missing here: each named, exit 1, nothing written" \
  || bad "dry-run of the shipped recipe (rc $rc): $(cat "$T/dry0.txt")"

# --dry-run with the inputs: counts, the sample sizes, steps from epochs, estimates at H200 rates
"${P[@]}" --dry-run --card H200 --workdir "$T/w" >"$T/dry.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "ok    pref.image_dir $T/imgs: 6 images, a seeded sample of 4 used" "$T/dry.txt" \
  && grep -q "ok    describe.data $T/sft.json: 7 records, 6 with an image (1 repeating an earlier id, left out); 4 used (" "$T/dry.txt" \
  && grep -q "ok    benchmarks.pope: 3 questions on 3 images" "$T/dry.txt" \
  && grep -Eq "^  dpo +2 steps x 2 pairs" "$T/dry.txt" && grep -Eq "^  sft2 +2 steps x 2 records" "$T/dry.txt" \
  && grep -q "estimated total: .* on one H200" "$T/dry.txt" && grep -q "inputs ok." "$T/dry.txt" && [ ! -e "$T/w" ] \
  && ok "dry-run: pools counted and sampled (a repeated record id left out), steps from epochs and batch, an estimate; nothing written" \
  || bad "dry-run (rc $rc): $(cat "$T/dry.txt")"

# the estimate at 7B shape (a config-only LLaVA-NeXT-Mistral-7B folder; 7.24e9 LM parameters, so the
# H200 rates apply unscaled), by hand with --expect-tokens 300 and the pools at their limits:
#   pref     6000 x (2 - 0.5) x (2928 + 100) positions x 11.1/251755 s + 6000 x 2 x 300 tokens x 0.023/128 s = 1848 s = 30.8 min
#   dpo      750 steps x 8 pairs x 2 sides x (576 + 60 + 300) positions / 7168 per s                      = 1567 s = 26.1 min
#   describe 5000 x (2928 + 20) positions x 11.1/251755 s + 5000 x 300 tokens x 0.023/128 s                   = 919 s = 15.3 min
#   sft2     156 steps x 32 records x (576 + 300 + 300) positions / 4841 per s                            = 1213 s = 20.2 min
mkdir -p "$T/m7"
python3 - "$M/config.json" "$T/m7/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["text_config"].update(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=32064, head_dim=128)
json.dump(c, open(sys.argv[2], "w"))
PY
"$STIC" pipeline --recipe recipes/stic-llava16-mistral7b.yaml --dry-run --card H200 --expect-tokens 300 --set device=cpu \
  --set model.path="$T/m7" --workdir "$T/d7" >"$T/dry7.txt" 2>&1
grep -Eq "^  pref +6000 images x 2 answers of ~300 tokens \(limit 1024\) \(anyres\) +30.8 min" "$T/dry7.txt" \
  && grep -Eq "^  dpo +750 steps x 8 pairs, <= 936 positions per side \(pad\) +26.1 min" "$T/dry7.txt" \
  && grep -Eq "^  describe +5000 images, answers of ~300 tokens \(limit 1024\) \(anyres\) +15.3 min" "$T/dry7.txt" \
  && grep -Eq "^  sft2 +156 steps x 32 records, <= 1176 positions each \(pad\) +20.2 min" "$T/dry7.txt" \
  && grep -q "7.24B language-model parameters" "$T/dry7.txt" \
  && ok "dry-run at 7B shape: the stage estimates equal the hand-computed ones (H200, 300-token answers)" \
  || bad "dry-run estimates: $(cat "$T/dry7.txt")"

# an unreadable instruction file and a broken image list are named before any work
printf '[{"id": "a", "image": "x.jpg"},\n 42]\n' >"$T/bad.json"
"$STIC" pipeline --recipe recipes/stic-llava16-mistral7b.yaml --dry-run "${SETS[@]}" --set describe.data=$T/bad.json \
  --set pref.image_dir=$T/none --workdir "$T/w" >"$T/dry2.txt" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "FAIL  describe.data: $T/bad.json: element 1: a record must be a JSON object" "$T/dry2.txt" \
  && grep -q "FAIL  pref.image_dir $T/none: $T/none: the image folder does not exist" "$T/dry2.txt" \
  && ok "dry-run: a bad record and a missing folder named with file and element" || bad "dry-run of bad inputs (rc $rc): $(cat "$T/dry2.txt")"

# the whole run, killed (-9) in the middle of generate-pref (answers of a fixed 300 tokens, one
# request at a time: a few seconds), then resumed by the same command
RUN=("${P[@]}" --set pref.ignore_eos=true --set pref.max_new_tokens=300 --set pref.batch_size=1 --workdir "$T/w")
"${RUN[@]}" >"$T/run1.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [ -s "$T/w/pref/pairs.jsonl" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
cp "$T/w/pref/pairs.jsonl" "$T/pairs_first.jsonl" 2>/dev/null
n1=$(wc -l <"$T/pairs_first.jsonl" 2>/dev/null || echo 0)
"${RUN[@]}" >"$T/run2.log" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$n1" -ge 1 ] && [ "$n1" -lt 4 ] \
  && grep -q "pref: running" "$T/run2.log" && grep -q "eval: finished earlier, skipped" "$T/run2.log" \
  && [ "$(head -n "$n1" "$T/w/pref/pairs.jsonl")" = "$(cat "$T/pairs_first.jsonl")" ] \
  && ok "run: killed -9 with $n1 of 4 pairs written, resumed: those kept, every later stage finished" \
  || bad "run/resume (rc $rc, $n1 pairs at the kill): $(tail -5 "$T/run1.log"; tail -8 "$T/run2.log")"

python3 - "$T/w" "$T/imgs" <<'PY' && ok "run: 4 sampled pairs, the stage-2 pool (4 records with an image) infused, six evaluations, the report" || bad "run outputs"
import json, sys, os
w, imgs = sys.argv[1], sys.argv[2]
sample = [l.strip() for l in open(f"{w}/pref/images.txt") if l.strip()]
assert len(sample) == 4 and all(os.path.exists(os.path.join(imgs, s)) for s in sample), sample
pairs = [json.loads(l) for l in open(f"{w}/pref/pairs.jsonl")]
assert sorted(p["image"] for p in pairs) == sorted(sample), (pairs, sample)
recs = json.load(open(f"{w}/describe/records.json"))
assert len(recs) == 4 and all(r.get("image") for r in recs) and all(r["id"] != "c" for r in recs)
assert not any(r["image"] == "rocket.jpg" for r in recs)   # the second record "a" is left out
inf = json.load(open(f"{w}/infuse/stage2_infused.json"))
assert [r["id"] for r in inf] == [r["id"] for r in recs]
assert all("Image description:\n" in r["conversations"][0]["value"] for r in inf)
cfg = json.load(open(f"{w}/dpo/train_config.json"))
assert cfg["template"] == "vicuna_v1" and cfg["image_mode"] == "pad" and cfg["lora_r"] == 4 and cfg["total_steps"] == 2, cfg
assert all(len(p["chosen"][1]["content"]) > 300 for p in pairs)   # 300 tokens each (ignore_eos)
cfg2 = json.load(open(f"{w}/sft2/train_config.json"))
assert cfg2["template"] == "vicuna_v1" and cfg2["image_mode"] == "pad" and cfg2["total_steps"] == 2 and cfg2["adapter"].endswith("/dpo"), cfg2
for d in ["eval", "eval_stage1", "eval_stage2", "eval_dar", "eval_stage1_dar", "eval_stage2_dar"]:
    s = json.load(open(f"{w}/{d}/pope/summary.json"))
    assert 0 <= s["metrics"]["accuracy"] <= 100, (d, s)
rep = open(f"{w}/report.md").read()
for row in ["| base |", "| base + DaR |", "| + stage 1 (DPO) |", "| + stage 2 (infused SFT) |", "| + stage 2 + DaR |"]:
    assert row in rep, row
assert "POPE F1" in rep and "## Time per stage" in rep and "report/dpo.svg" in rep
import re   # the table's cells are the summaries' percentages
acc = json.load(open(f"{w}/eval_stage2_dar/pope/summary.json"))["metrics"]["accuracy"]
assert re.search(r"\| \+ stage 2 \+ DaR \| %.1f \|" % acc, rep), rep
assert os.path.exists(f"{w}/report.html") and os.path.exists(f"{w}/report/loss.svg")
PY

# the stage-2 adapter loads and runs
"$STIC" chat --model $M --adapter "$T/w/sft2" --image "$T/imgs/china.jpg" --prompt "Describe." --max-new-tokens 3 \
  >"$T/chat.txt" 2>&1 && ok "chat --adapter on the stage-2 adapter" || bad "chat: $(tail -3 "$T/chat.txt")"

# a world section in a recipe with model.path is refused, naming it
cp recipes/stic-llava16-mistral7b.yaml "$T/mixed.yaml"; printf 'world:\n  preset: world-tiny\n' >>"$T/mixed.yaml"
"$STIC" pipeline --recipe "$T/mixed.yaml" --dry-run "${SETS[@]}" >"$T/mixed.txt" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "mixed.yaml:[0-9]*: 'world' belongs to world recipes" "$T/mixed.txt" \
  && ok "a world section beside model.path is refused with its line" || bad "mixed recipe (rc $rc): $(cat "$T/mixed.txt")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
