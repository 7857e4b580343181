#!/usr/bin/env bash
# End-to-end tests of `stic generate-pref` and `stic convert` on the committed tiny checkpoints
# and real photos: the pair schema, one seeded draw per image (the same pairs at batch 1 and 8,
# and from 2 shards merged), corruptions applied, bad images listed in errors.jsonl (the run
# goes on), kill -9 then resume (every image exactly once, the same pairs as an uninterrupted
# run), the released-code switch, convert's round trip and duplicate refusal.
# Usage: pref_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/llava_llama
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

mkdir -p "$T/imgs"
for f in china.jpg camera.png chelsea.png coffee.png flower.jpg logo.png rocket.jpg palette_color.png; do cp "$IMG/$f" "$T/imgs/"; done
gen() { "$STIC" generate-pref --model $M --max-new-tokens 12 --quiet "$@"; }

gen --image-dir "$T/imgs" --out "$T/a/pairs.jsonl" --batch-size 8 >"$T/a.log" 2>&1 \
  && ok "generate-pref: a folder of 8 photos" || bad "generate-pref failed: $(tail -3 "$T/a.log")"
python3 - "$T/a/pairs.jsonl" <<'PY' && ok "pair schema: released fields + stic's, <image> in the user turn, both sides" || bad "schema"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 8, len(rows)
kinds = set()
for r in rows:
    for k in ["id", "image", "image_corruption", "hallu_prompt", "chosen", "rejected", "kind", "corruption",
              "prompts", "sampling", "chosen_info", "rejected_info"]:
        assert k in r, k
    assert [m["role"] for m in r["chosen"]] == ["user", "assistant"] == [m["role"] for m in r["rejected"]]
    assert r["chosen"][0]["content"] == r["rejected"][0]["content"]
    assert r["chosen"][0]["content"].startswith("<image>\n")
    assert r["prompts"]["chosen"].startswith("Please provide a detailed description")
    assert r["sampling"]["temperature"] == 0.2 and r["sampling"]["max_new_tokens"] == 12
    if r["kind"] == "bad_prompt":
        assert r["hallu_prompt"] == r["prompts"]["rejected"] and not r["image_corruption"] and r["corruption"] is None
    else:
        assert r["hallu_prompt"] == "" and r["image_corruption"] and r["corruption"]["applied"]
        assert r["corruption"]["kind"] == r["kind"] in ("lowres", "jitter")
        if r["kind"] == "jitter":
            assert 0.5 <= r["corruption"]["brightness"] <= 1.5 and -0.3 <= r["corruption"]["hue"] <= 0.3
    kinds.add(r["kind"])
    assert r["chosen_info"]["tokens"] <= 12
assert len(kinds) >= 2, kinds
PY
[ -f "$T/a/pairs.jsonl.summary.json" ] && python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['pairs']==8 and sum(s['by_kind'].values())==8" "$T/a/pairs.jsonl.summary.json" \
  && ok "summary: pairs by kind" || bad "summary"

gen --image-dir "$T/imgs" --out "$T/b/pairs.jsonl" --batch-size 1 >/dev/null 2>&1
gen --image-dir "$T/imgs" --out "$T/s/p0.jsonl" --batch-size 3 --shard 0/2 >/dev/null 2>&1
gen --image-dir "$T/imgs" --out "$T/s/p1.jsonl" --batch-size 3 --shard 1/2 >/dev/null 2>&1
"$STIC" convert "$T/s/p0.jsonl" "$T/s/p1.jsonl" --out "$T/s/merged.jsonl" >/dev/null 2>&1
python3 - "$T/a/pairs.jsonl" "$T/b/pairs.jsonl" "$T/s/merged.jsonl" "$T/s/p0.jsonl" "$T/s/p1.jsonl" <<'PY' \
  && ok "same seed: the same pairs (sampled, T = 0.2) at batch 8, batch 1 and from 2 shards merged" || bad "determinism"
import json, sys
def load(p):
    return {r["id"]: (r["kind"], r["corruption"], r["chosen"], r["rejected"]) for r in map(json.loads, open(p))}
a, b, m = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
assert a == b, "batch 1 vs 8"
assert a == m, "shards"
assert 0 < len(load(sys.argv[4])) < 8 and len(load(sys.argv[4])) + len(load(sys.argv[5])) == 8
PY

gen --image-dir "$T/imgs" --out "$T/a/pairs.jsonl" --seed 0 >"$T/re.log" 2>&1
[ "$(wc -l <"$T/a/pairs.jsonl")" -eq 8 ] && grep -q '0 pairs written' "$T/re.log" && ok "re-run: finished images skipped" \
  || bad "re-run: $(cat "$T/re.log")"
gen --image-dir "$T/imgs" --out "$T/c/pairs.jsonl" --seed 7 >/dev/null 2>&1
python3 - "$T/a/pairs.jsonl" "$T/c/pairs.jsonl" <<'PY' && ok "another seed: other choices" || bad "seed has no effect"
import json, sys
a = {r["id"]: (r["kind"], r["chosen"][0]["content"]) for r in map(json.loads, open(sys.argv[1]))}
c = {r["id"]: (r["kind"], r["chosen"][0]["content"]) for r in map(json.loads, open(sys.argv[2]))}
assert a != c
PY

# bad input: zero-byte, truncated JPEG, not an image, a missing file and a duplicate in a list
# (listed in OUT.errors.jsonl)
mkdir -p "$T/bad"; cp "$IMG/china.jpg" "$IMG/truncated.jpg" "$T/bad/"; : >"$T/bad/empty.png"; echo "hello" >"$T/bad/text.jpg"
printf 'china.jpg\ntruncated.jpg\nempty.png\ntext.jpg\nnowhere.jpg\nchina.jpg\n' >"$T/bad/list.txt"
gen --image-dir "$T/bad" --image-list "$T/bad/list.txt" --out "$T/bad/out/pairs.jsonl" >"$T/bad.log" 2>&1; rc=$?
python3 - "$T/bad/out" <<'PY' && [ $rc -eq 0 ] && ok "bad images: one errors.jsonl line each (decode, missing, duplicate), the good one paired, exit 0" || bad "bad input (rc $rc): $(tail -3 "$T/bad.log")"
import json, sys
d = sys.argv[1]
pairs = [json.loads(l) for l in open(d + "/pairs.jsonl")]
errs = [json.loads(l) for l in open(d + "/pairs.jsonl.errors.jsonl")]
assert [p["id"] for p in pairs] == ["china.jpg"], pairs
why = {e.get("id", e.get("duplicate_of")) + ":" + e["reason"] for e in errs}
assert why == {"truncated.jpg:decode", "empty.png:decode", "text.jpg:decode", "nowhere.jpg:missing", "china.jpg:duplicate"}, why
assert all(e["message"] for e in errs)
PY
gen --image-dir "$T/bad" --image-list "$T/bad/list.txt" --out "$T/bad/out/pairs.jsonl" >"$T/bad2.log" 2>&1
[ "$(wc -l <"$T/bad/out/pairs.jsonl.errors.jsonl")" -eq 5 ] && ok "bad images are not retried or listed twice on a re-run" || bad "errors grew: $(cat "$T/bad/out/pairs.jsonl.errors.jsonl")"
# a missing file that appears later is retried (errors are keyed on the path that failed)
mkdir -p "$T/bad2"; printf 'nowhere.jpg\n' >"$T/bad2/list.txt"
gen --image-dir "$T/bad2" --image-list "$T/bad2/list.txt" --out "$T/bad2/pairs.jsonl" >/dev/null 2>&1
cp "$IMG/china.jpg" "$T/imgs/nowhere.jpg"
gen --image-dir "$T/imgs" --image-list "$T/bad2/list.txt" --out "$T/bad2/pairs.jsonl" >/dev/null 2>&1
rm "$T/imgs/nowhere.jpg"
[ "$(wc -l <"$T/bad2/pairs.jsonl")" -eq 1 ] && ok "an image that failed under one --image-dir is generated under another" || bad "missing image not retried"
# a prompt the template cannot take is not the images' fault: nothing listed, the run fails
gen --image-dir "$T/imgs" --out "$T/raw/pairs.jsonl" --template raw >"$T/raw.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "template raw" "$T/raw.log" && [ ! -s "$T/raw/pairs.jsonl.errors.jsonl" ] \
  && ok "a bad template fails before any image, blaming no image" || bad "bad template (rc $rc): $(tail -2 "$T/raw.log")"
gen --image-dir "$T/imgs" --out "$T/bc/pairs.jsonl" --corruptions "lowres, blur" >"$T/bc.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "unknown corruption 'blur'" "$T/bc.log" && ok "an unknown corruption name in the list fails up front" || bad "corruption names (rc $rc): $(cat "$T/bc.log")"
printf 'truncated.jpg\nempty.png\n' >"$T/bad/allbad.txt"
gen --image-dir "$T/bad" --image-list "$T/bad/allbad.txt" --out "$T/bad/none/pairs.jsonl" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && ok "nothing could be processed: exit 1" || bad "all-bad exit code $rc"

# kill -9 in the middle, then resume: the same pairs as the uninterrupted run, each once
for f in "$T"/imgs/*; do for i in 1 2 3; do cp "$f" "$T/imgs/k${i}_$(basename "$f")"; done; done
K=("$STIC" generate-pref --model $M --max-new-tokens 60 --ignore-eos --batch-size 2 --quiet --image-dir "$T/imgs")
"${K[@]}" --out "$T/full/pairs.jsonl" >/dev/null 2>&1
"${K[@]}" --out "$T/kill/pairs.jsonl" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  [ -s "$T/kill/pairs.jsonl" ] && [ "$(wc -l <"$T/kill/pairs.jsonl")" -ge 4 ] && break; sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(wc -l <"$T/kill/pairs.jsonl")
printf '{"id": "torn' >>"$T/kill/pairs.jsonl"
"${K[@]}" --out "$T/kill/pairs.jsonl" >/dev/null 2>&1
python3 - "$T/full/pairs.jsonl" "$T/kill/pairs.jsonl" "$before" <<'PY' && ok "kill -9 then resume: 32 images once each, the uninterrupted run's pairs (killed after $before)" || bad "kill -9 resume"
import json, sys
full = {r["id"]: (r["chosen"], r["rejected"], r["kind"]) for r in map(json.loads, open(sys.argv[1]))}
rows = [json.loads(l) for l in open(sys.argv[2])]
ids = [r["id"] for r in rows]
assert len(ids) == 32 == len(set(ids)) == len(full), (len(ids), len(set(ids)), len(full))
assert {r["id"]: (r["chosen"], r["rejected"], r["kind"]) for r in rows} == full
assert 0 < int(sys.argv[3]) < 32, sys.argv[3]
PY

gen --image-dir "$T/imgs" --out "$T/rel/pairs.jsonl" --released-compat --p-bad-prompt 0 >/dev/null 2>&1
python3 - "$T/rel/pairs.jsonl" <<'PY' && ok "--released-compat: no <image> in the stored prompt, corruption recorded, not applied" || bad "released compat"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows and all(not r["chosen"][0]["content"].startswith("<image>") for r in rows)
assert all(r["image_corruption"] and r["corruption"]["applied"] is False for r in rows)
PY

"$STIC" convert "$T/a/pairs.jsonl" --out "$T/conv/list.json" >/dev/null 2>&1 \
  && "$STIC" convert "$T/conv/list.json" --out "$T/conv/back.jsonl" >/dev/null 2>&1 \
  && python3 - "$T/a/pairs.jsonl" "$T/conv/list.json" "$T/conv/back.jsonl" <<'PY' && ok "convert: JSONL -> JSON list -> JSONL round trip" || bad "convert round trip"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
lst = json.load(open(sys.argv[2]))
b = [json.loads(l) for l in open(sys.argv[3])]
assert isinstance(lst, list) and lst == a == b
PY
"$STIC" convert "$T/a/pairs.jsonl" "$T/b/pairs.jsonl" --out "$T/conv/dup.jsonl" >"$T/dup.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "duplicate id" "$T/dup.log" && [ ! -e "$T/conv/dup.jsonl" ] \
  && ok "convert refuses duplicate ids, naming both places, writing nothing" || bad "convert duplicates (rc $rc): $(cat "$T/dup.log")"
printf '{"image": "x.jpg", "chosen": "oops"}\n' >"$T/conv/broken.jsonl"
"$STIC" convert "$T/conv/broken.jsonl" --out "$T/conv/x.json" >"$T/br.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q 'broken.jsonl: line 1: "chosen"' "$T/br.log" && ok "convert: a malformed record is named by file and line" || bad "convert malformed: $(cat "$T/br.log")"

# world-pref: pairs scored against the built-in world's truth. Hand-made pairs whose chosen side
# is the truth and whose rejected side invents objects: the chosen side hallucinates less in all
# of them; generated pairs are scored too.
"$STIC" world --out "$T/w" --preset world-smoke --quiet >/dev/null 2>&1
python3 - "$T/w" <<'PY'
import json, sys
w = sys.argv[1]
with open(f"{w}/hand.jsonl", "w") as f:
    for i, l in enumerate(open(f"{w}/gt/unlabeled_scenes.jsonl")):
        s = json.loads(l)
        truth = " ".join(f"There is a {o['color']} {o['shape']}." for o in s["objects"])
        shapes = {o["shape"] for o in s["objects"]}
        fake = next(x for x in ["hexagon", "cross", "star", "heart", "circle"] if x not in shapes)
        kind = ["bad_prompt", "lowres", "jitter"][i % 3]
        f.write(json.dumps({"id": s["id"], "image": s["image"], "kind": kind,
            "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": truth}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": truth + f" There is a purple {fake}."}]}) + "\n")
PY
"$STIC" eval --benchmark world-pref --data "$T/w" --pairs "$T/w/hand.jsonl" --out "$T/w/ev" >"$T/wp.log" 2>&1
python3 - "$T/w/ev" "$T/w/hand.jsonl" <<'PY' && ok "world-pref: the truth beats invented objects in every pair, by kind" || bad "world-pref scoring: $(cat "$T/wp.log")"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
n = sum(1 for _ in open(sys.argv[2]))
assert s["pairs"] == n and s["unknown_images"] == 0, s
for k in ["all", "bad_prompt", "lowres", "jitter"]:
    b = s["by_kind"][k]
    assert b["chosen_hallucinates_less"] == 1.0 and b["chosen_hallucinates_more"] == 0.0, (k, b)
    assert b["chosen"]["chair_i"] == 0.0 and b["rejected"]["chair_i"] > 0 and b["chosen"]["precision"] == 1.0
assert sum(1 for _ in open(sys.argv[1] + "/per_pair.jsonl")) == n
PY
"$STIC" generate-pref --model "$T/w/model" --image-dir "$T/w/images" --image-list "$T/w/data/unlabeled_images.txt" \
  --out "$T/w/pairs.jsonl" --max-new-tokens 16 --quiet >/dev/null 2>&1 \
  && "$STIC" eval --benchmark world-pref --data "$T/w" --pairs "$T/w/pairs.jsonl" --out "$T/w/ev2" >"$T/wp2.log" 2>&1 \
  && grep -q "| all | 16 |" "$T/wp2.log" && ok "world-pref on generated pairs: every image of the unlabeled pool scored" \
  || bad "world-pref on generated pairs: $(cat "$T/wp2.log")"

# ---------------------------------------------------------------- train-dpo on the generated pairs
dpo() { "$STIC" train-dpo --model $M --data "$T/a/pairs.jsonl" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lr 1e-3 --batch-size 2 \
  --no-progress "$@"; }
cat >"$T/stage1.yaml" <<'YAML'
# flat recipe: flag: value
lr: 2.0e-3
max-steps: 3
beta: 0.2
YAML
dpo --output-dir "$T/dpo" --recipe "$T/stage1.yaml" --max-steps 2 >"$T/dpo.log" 2>&1 \
  && python3 - "$T/dpo" <<'PY' 2>"$T/dpo.py.log" && ok "train-dpo: recipe values as defaults, flags win; TRL's metrics; adapter, plot, config" || bad "train-dpo: $(tail -3 "$T/dpo.log" "$T/dpo.py.log")"
import json, math, os, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
assert len(rows) == 2, len(rows)                    # --max-steps 2 beats the recipe's 3
cfg = json.load(open(d + "/train_config.json"))
assert cfg["lr"] == 1e-3 and cfg["beta"] == 0.2, cfg  # --lr given on the command line; beta from the recipe
for k in ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
          "logps/rejected", "nll", "pairs_per_s", "tokens_per_s", "grad_norm"]:
    assert k in rows[0], k
assert abs(rows[0]["loss"] - (math.log(2) + rows[0]["nll"] / 1024)) < 1e-5, rows[0]
for f in ["adapter_model.safetensors", "adapter_config.json", "dpo.svg", "latest"]:
    assert os.path.exists(os.path.join(d, f)), f
PY
"$STIC" chat --model $M --adapter "$T/dpo" --image "$IMG/china.jpg" --prompt "Describe." --max-new-tokens 4 >"$T/chat.txt" 2>&1 \
  && ok "chat --adapter loads the DPO adapter" || bad "chat --adapter: $(tail -2 "$T/chat.txt")"
# kill -9 in the middle, then --resume: the run completes with every step logged once
(exec "$STIC" train-dpo --model $M --data "$T/a/pairs.jsonl" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lr 1e-3 \
  --batch-size 2 --no-progress --output-dir "$T/dpo_k" --max-steps 40 --save-every 1 >"$T/dk.log" 2>&1) &
pid=$!  # stic itself (exec): kill -9 reaches the trainer, not a wrapping shell
for _ in $(seq 100); do [ -f "$T/dpo_k/latest" ] && break; sleep 0.1; done
sleep 0.3; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
dpo --output-dir "$T/dpo_k" --max-steps 40 --save-every 1 --resume >"$T/dk2.log" 2>&1 \
  && python3 - "$T/dpo_k/metrics.jsonl" <<'PY' && ok "train-dpo: kill -9 then --resume logs steps 1..40 exactly once" || bad "dpo resume: $(tail -3 "$T/dk2.log")"
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
assert steps == list(range(1, 41)), steps
PY
"$STIC" train-dpo --model $M --data "$T/a/pairs.jsonl" --output-dir "$T/dpo_bad" --loss-type ipo --label-smoothing 0.1 \
  >"$T/db.log" 2>&1; [ $? -ne 0 ] && grep -q "label-smoothing applies to --loss-type sigmoid" "$T/db.log" \
  && ok "train-dpo: conflicting loss options refused by name" || bad "dpo options: $(cat "$T/db.log")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
