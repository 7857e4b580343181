#!/usr/bin/env bash
# End-to-end tests of STIC stage 2 on the committed tiny checkpoint and real photos:
# `stic describe` (one description per distinct image, shared by its records, a drawn normal
# prompt, the same descriptions at batch 1 and 4 and from 2 shards, a missing image as an error
# line, kill -9 then resume), `stic infuse` on describe's output (the first human turn only,
# matched by id; unknown and duplicate ids counted), then `stic train-sft --adapter` continuing a
# stage-1 adapter from train-dpo, and `stic chat --adapter` on the result.
# Usage: stage2_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/llava_llama
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

mkdir -p "$T/imgs"
for f in china.jpg camera.png chelsea.png coffee.png flower.jpg rocket.jpg; do cp "$IMG/$f" "$T/imgs/"; done
# an instruction set: two records share china.jpg, one has no image, one repeats an id, one
# names a missing image; "n7" has a number id (LLaVA's data has both)
cat >"$T/sft.json" <<'JSON'
[
 {"id": "r1", "image": "china.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A temple."}]},
 {"id": "r2", "image": "china.jpg", "conversations": [{"from": "human", "value": "Which colour dominates?\n<image>"}, {"from": "gpt", "value": "Red."}, {"from": "human", "value": "And the sky?"}, {"from": "gpt", "value": "Blue."}]},
 {"id": "r3", "image": "camera.png", "conversations": [{"from": "human", "value": "<image>\nWho holds the camera?"}, {"from": "gpt", "value": "A man."}]},
 {"id": "r4", "conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4."}]},
 {"id": 7, "image": "coffee.png", "conversations": [{"from": "human", "value": "<image>\nWhat drink is this?"}, {"from": "gpt", "value": "Coffee."}]},
 {"id": "r3", "image": "rocket.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat flies?"}, {"from": "gpt", "value": "A rocket."}]},
 {"id": "r6", "image": "missing.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "Nothing."}]},
 {"id": "r8", "image": "flower.jpg", "extra": {"keep": [1, 2]}, "conversations": [{"from": "human", "value": "<image>\nName the flower."}, {"from": "gpt", "value": "A daisy."}]}
]
JSON
desc() { "$STIC" describe --model $M --data "$T/sft.json" --image-dir "$T/imgs" --max-new-tokens 12 --quiet "$@"; }
desc --out "$T/a/desc.jsonl" --batch-size 4 >"$T/a.log" 2>&1 \
  && python3 - "$T/a/desc.jsonl" <<'PY' && ok "describe: one line per record id with an image; shared images described once; drawn normal prompts; missing image as an error line" || bad "describe: $(tail -3 "$T/a.log")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["id"]: r for r in rows}
assert sorted(by) == ["7", "r1", "r2", "r3", "r6", "r8"] and len(rows) == 6, sorted(by)   # r4: no image; 2nd r3: repeated id
assert by["r3"]["image"] == "camera.png"
assert "error" in by["r6"] and "description" not in by["r6"]
assert by["r1"]["description"] == by["r2"]["description"] and by["r1"]["prompt"] == by["r2"]["prompt"]
normal = ["Illustrate the details of the picture.", "Summarize the visual content presented.",
          "Explain what is depicted in the photograph.", "Outline the key elements captured in the image.",
          "Detail the composition and subjects within the frame.", "Convey the atmosphere and mood represented in the snapshot.",
          "Interpret the scene shown in the image.", "Identify and describe the main focal points in the visual."]
for k in ["r1", "r3", "7", "r8"]:
    r = by[k]
    assert set(r) == {"id", "image", "prompt", "description", "finish_reason"}, r
    assert r["prompt"] in normal and r["description"] and r["finish_reason"] in ("eos", "length")
assert len({by[k]["prompt"] for k in ["r1", "r3", "7", "r8"]}) >= 2   # drawn per image, not one prompt
PY
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['records']==5 and s['errors']==1 and s['this_run']['skipped']==2, s" "$T/a/desc.jsonl.summary.json" \
  && grep -q "id r3 appears again" "$T/a.log" && grep -q "(id r4): no image" "$T/a.log" \
  && ok "describe: summary counts; the repeated id and the record without an image are named" || bad "describe summary: $(cat "$T/a.log")"

desc --out "$T/b/desc.jsonl" --batch-size 1 >/dev/null 2>&1
desc --out "$T/s/d0.jsonl" --batch-size 3 --shard 0/2 >/dev/null 2>&1
desc --out "$T/s/d1.jsonl" --batch-size 3 --shard 1/2 >/dev/null 2>&1
python3 - "$T/a/desc.jsonl" "$T/b/desc.jsonl" "$T/s/d0.jsonl" "$T/s/d1.jsonl" <<'PY' \
  && ok "describe: the same descriptions (T = 0.2) at batch 4, batch 1 and from 2 shards (split by image)" || bad "describe determinism"
import json, sys
load = lambda p: {r["id"]: (r.get("prompt"), r.get("description")) for r in map(json.loads, open(p))}
a, b, s0, s1 = map(load, sys.argv[1:])
assert a == b, (a, b)
assert not (set(s0) & set(s1)) and {**s0, **s1} == a
imgs0 = {json.loads(l)["image"] for l in open(sys.argv[3])}
imgs1 = {json.loads(l)["image"] for l in open(sys.argv[4])}
assert not (imgs0 & imgs1)   # china.jpg's two records stay in one shard
PY
desc --out "$T/a/desc.jsonl" --batch-size 4 >"$T/a2.log" 2>&1
[ "$(wc -l <"$T/a/desc.jsonl")" -eq 6 ] && grep -q "0 images described" "$T/a2.log" \
  && ok "describe: a re-run finds every record done and describes nothing" || bad "describe re-run: $(cat "$T/a2.log")"

# kill -9 in the middle, then resume: the uninterrupted run's descriptions, each id once
python3 - "$T/big.json" <<'PY'
import json, sys
imgs = ["china.jpg", "camera.png", "chelsea.png", "coffee.png", "flower.jpg", "rocket.jpg"]
recs = [{"id": f"k{i}", "image": f"k{i}_{imgs[i % 6]}", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "x"}]} for i in range(24)]
json.dump(recs, open(sys.argv[1], "w"))
PY
for i in $(seq 0 23); do f=$(python3 -c "import json,sys;print(json.load(open('$T/big.json'))[$i]['image'])"); cp "$T/imgs/${f#*_}" "$T/imgs/$f"; done
K=("$STIC" describe --model $M --data "$T/big.json" --image-dir "$T/imgs" --max-new-tokens 60 --batch-size 2 --quiet)
"${K[@]}" --out "$T/full/desc.jsonl" >/dev/null 2>&1
(exec "${K[@]}" --out "$T/kill/desc.jsonl" >/dev/null 2>&1) &
pid=$!
for _ in $(seq 1 300); do
  [ -s "$T/kill/desc.jsonl" ] && [ "$(wc -l <"$T/kill/desc.jsonl")" -ge 3 ] && break; sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(wc -l <"$T/kill/desc.jsonl")
printf '{"id": "torn' >>"$T/kill/desc.jsonl"
"${K[@]}" --out "$T/kill/desc.jsonl" >/dev/null 2>&1
python3 - "$T/full/desc.jsonl" "$T/kill/desc.jsonl" "$before" <<'PY' && ok "describe: kill -9 then resume: 24 records once each, the uninterrupted run's descriptions (killed after $before)" || bad "describe kill -9 resume"
import json, sys
full = {r["id"]: r["description"] for r in map(json.loads, open(sys.argv[1]))}
rows = [json.loads(l) for l in open(sys.argv[2])]
ids = [r["id"] for r in rows]
assert len(ids) == 24 == len(set(ids)) == len(full), (len(ids), len(set(ids)))
assert {r["id"]: r["description"] for r in rows} == full
assert 0 < int(sys.argv[3]) < 24, sys.argv[3]
PY

# infuse describe's output; an unknown id and a repeated id are counted, not fatal
cp "$T/a/desc.jsonl" "$T/desc_x.jsonl"
echo '{"id": "ghost", "image": "china.jpg", "description": "nothing"}' >>"$T/desc_x.jsonl"
head -1 "$T/a/desc.jsonl" >>"$T/desc_x.jsonl"
"$STIC" infuse --data "$T/sft.json" --descriptions "$T/desc_x.jsonl" --out "$T/inf/sft_infused.json" >"$T/inf.log" 2>&1 \
  && python3 - "$T/sft.json" "$T/desc_x.jsonl" "$T/inf/sft_infused.json" <<'PY' && ok "infuse: describe's descriptions into the first human turn by id; later turns, answers and extra fields unchanged; problems counted" || bad "infuse: $(cat "$T/inf.log")"
import json, sys
src = json.load(open(sys.argv[1]))
desc = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    desc.setdefault(r["id"], r)
out = json.load(open(sys.argv[3]))
assert len(out) == len(src)
for s, o in zip(src, out):
    sid = str(s["id"])
    d = desc.get(sid)
    if d and "description" in d and sid in ("r1", "r2", "7", "r8", "r3"):
        if sid == "r3" and s["image"] != d["image"]:   # the second r3 (rocket.jpg): another image's description
            assert o == s; continue
        q = s["conversations"][0]["value"].replace("<image>", "").strip()
        assert o["conversations"][0]["value"] == "<image>\nImage description:\n" + d["description"] + "\n\n" + q
        assert o["conversations"][1:] == s["conversations"][1:]
        assert {k: v for k, v in o.items() if k != "conversations"} == {k: v for k, v in s.items() if k != "conversations"}
    else:
        assert o == s, (o, s)
sm = json.load(open(sys.argv[3] + ".summary.json"))
assert sm["infused"] == 5 and sm["image_mismatch"] == 1 and sm["unused_descriptions"] == 1, sm
assert sm["bad_description_lines"] == 1 and sm["describe_failed"] == 1 and sm["without_description"] == 2, sm
assert list(out[7].keys()) == ["id", "image", "extra", "conversations"]   # field order kept
PY
grep -q "id ghost names no record" "$T/inf.log" && grep -q "was described on line 1 already" "$T/inf.log" \
  && ok "infuse: the unknown and the repeated description id are named with their lines" || bad "infuse messages: $(cat "$T/inf.log")"

# stage 1 adapter (train-dpo on generate-pref's pairs), then stage 2 continues it
"$STIC" generate-pref --model $M --image-dir "$T/imgs" --out "$T/pairs.jsonl" --max-new-tokens 8 --quiet >/dev/null 2>&1
"$STIC" train-dpo --model $M --data "$T/pairs.jsonl" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lr 1e-3 --batch-size 2 \
  --max-steps 2 --no-progress --output-dir "$T/stage1" >"$T/dpo.log" 2>&1 || bad "train-dpo for stage 1: $(tail -3 "$T/dpo.log")"
desc --adapter "$T/stage1" --out "$T/s2/desc.jsonl" >"$T/s2d.log" 2>&1 \
  && "$STIC" infuse --data "$T/sft.json" --descriptions "$T/s2/desc.jsonl" --out "$T/s2/infused.json" >"$T/s2i.log" 2>&1 \
  && "$STIC" train-sft --model $M --adapter "$T/stage1" --data "$T/s2/infused.json" --image-dir "$T/imgs" --output-dir "$T/stage2" \
       --max-steps 2 --batch-size 2 --lr 2e-5 --no-progress >"$T/s2s.log" 2>&1 \
  && python3 - "$T/stage1" "$T/stage2" <<'PY' && ok "stage 2: describe with the stage-1 adapter -> infuse -> train-sft --adapter continues it (same r, alpha, targets; weights moved)" || bad "stage 2: $(tail -3 "$T/s2d.log" "$T/s2i.log" "$T/s2s.log")"
import json, struct, sys
def cfg(d): return json.load(open(d + "/adapter_config.json"))
a, b = cfg(sys.argv[1]), cfg(sys.argv[2])
for k in ["r", "lora_alpha", "target_modules"]:
    assert a[k] == b[k], (k, a[k], b[k])
def tensors(d):
    raw = open(d + "/adapter_model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    return {k: raw[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items()}
ta, tb = tensors(sys.argv[1]), tensors(sys.argv[2])
assert set(ta) == set(tb), (set(ta) ^ set(tb))
assert sum(ta[k] != tb[k] for k in ta) > 0
PY
"$STIC" chat --model $M --adapter "$T/stage2" --image "$IMG/china.jpg" --prompt "Describe." --max-new-tokens 4 >"$T/chat.txt" 2>&1 \
  && ok "chat --adapter loads the stage-2 adapter" || bad "chat stage 2: $(tail -2 "$T/chat.txt")"

# the paper's stage-2 recipe (flat flags) continues the adapter with its settings; flags win
"$STIC" train-sft --recipe recipes/stic-stage2.yaml --model $M --adapter "$T/stage1" --data "$T/s2/infused.json" \
  --image-dir "$T/imgs" --output-dir "$T/stage2r" --device cpu --dtype auto --max-steps 1 --batch-size 2 --grad-accum 1 \
  --no-progress >"$T/s2r.log" 2>&1 \
  && python3 - "$T/stage2r/train_config.json" <<'PY' && ok "recipes/stic-stage2.yaml: lr 2e-5, cosine, 3% warm-up, dropout 0.05, length 2048 on the continued adapter" || bad "stage-2 recipe: $(tail -3 "$T/s2r.log")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["lr"] == 2e-5 and c["schedule"] == "cosine" and c["warmup_ratio"] == 0.03 and c["lora_dropout"] == 0.05, c
assert c["max_length"] == 2048 and c["template"] == "vicuna_v1" and c["lora_r"] == 4 and c["batch_size"] == 2, c
PY

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
