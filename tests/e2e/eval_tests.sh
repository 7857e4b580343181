#!/usr/bin/env bash
# End-to-end tests of `stic eval` on the real benchmark layouts, with the committed tiny checkpoint
# and real photos: hand-made POPE / ScienceQA / TextVQA / MMBench (base64 images) / LLaVA-Bench
# files; hand-written answer files in LLaVA's layout scored with --answers against hand-computed
# numbers; a model run with and without --dar (descriptions once per image, infused prompts);
# the same answers at batch 1 and 4 and from two shards; kill -9 then resume; --answers on the
# run's own file reproduces its summary; --compare; errors (missing image, undecodable base64)
# counted with their ids; exit 1 only when nothing could be scored.
# Usage: eval_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/llava_llama
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }
SFX='\nAnswer the question using a single word or phrase.'

mkdir -p "$T/imgs" "$T/pope"
for f in china.jpg camera.png chelsea.png coffee.png flower.jpg rocket.jpg; do cp "$IMG/$f" "$T/imgs/"; done
# POPE: LLaVA's question file (suffix in the text, categories interleaved) + the label folder
cat >"$T/pope_q.jsonl" <<JSON
{"question_id": 1, "image": "china.jpg", "text": "Is there a temple in the image?$SFX", "category": "random"}
{"question_id": 2, "image": "camera.png", "text": "Is there a dog in the image?$SFX", "category": "random"}
{"question_id": 3, "image": "chelsea.png", "text": "Is there a cat in the image?$SFX", "category": "adversarial"}
{"question_id": 4, "image": "coffee.png", "text": "Is there a car in the image?$SFX", "category": "adversarial"}
{"question_id": 5, "image": "missing.jpg", "text": "Is there a car in the image?$SFX", "category": "adversarial"}
JSON
cat >"$T/pope/coco_pope_random.json" <<'JSON'
{"question_id": 1, "image": "china.jpg", "text": "Is there a temple in the image?", "label": "yes"}
{"question_id": 2, "image": "camera.png", "text": "Is there a dog in the image?", "label": "no"}
JSON
cat >"$T/pope/coco_pope_adversarial.json" <<'JSON'
{"question_id": 1, "image": "chelsea.png", "text": "Is there a cat in the image?", "label": "yes"}
{"question_id": 2, "image": "coffee.png", "text": "Is there a car in the image?", "label": "no"}
{"question_id": 3, "image": "missing.jpg", "text": "Is there a car in the image?", "label": "no"}
JSON
# answers in LLaVA's layout from "another system": 1 yes (TP), 2 "No, there is not." (TN),
# 3 "NO" (case-sensitive: yes, TP), 4 "Yes, a red one." (FP); 5 not answered (an error)
cat >"$T/pope_ans.jsonl" <<'JSON'
{"question_id": 1, "prompt": "x", "text": "Yes", "answer_id": "a", "model_id": "m", "metadata": {}}
{"question_id": 2, "prompt": "x", "text": "No, there is not.", "answer_id": "b", "model_id": "m", "metadata": {}}
{"question_id": 3, "prompt": "x", "text": "NO", "answer_id": "c", "model_id": "m", "metadata": {}}
{"question_id": 4, "prompt": "x", "text": "Yes, a red one.", "answer_id": "d", "model_id": "m", "metadata": {}}
JSON
"$STIC" eval --benchmark pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" \
  --answers "$T/pope_ans.jsonl" --out "$T/pa" >"$T/pa.log" 2>&1 && python3 - "$T/pa/summary.json" <<'PY' \
  && ok "pope --answers: accuracy/precision/recall/F1/yes-ratio by hand; the unanswered question an error with its id" \
  || bad "pope --answers: $(tail -5 "$T/pa.log")"
import json, sys
s = json.load(open(sys.argv[1]))
m = s["metrics"]
# TP 2 (q1, q3), FP 1 (q4), TN 1 (q2), FN 0
assert abs(m["accuracy"] - 75.0) < 1e-9 and abs(m["precision"] - 200 / 3) < 1e-9 and abs(m["recall"] - 100) < 1e-9, m
assert abs(m["f1"] - 80.0) < 1e-9 and abs(m["yes_ratio"] - 75.0) < 1e-9, m
assert abs(s["categories"]["adversarial"]["f1"] - 200 / 3) < 1e-9 and abs(s["categories"]["random"]["f1"] - 100) < 1e-9
assert abs(m["f1_mean_over_categories"] - (100 + 200 / 3) / 2) < 1e-9
assert s["errors"]["count"] == 1 and s["errors"]["items"][0]["id"] == "5", s["errors"]
PY

# ScienceQA: LLaVA's question file + problems.json / pid_splits.json
mkdir -p "$T/sqa"
cat >"$T/sqa/problems.json" <<'JSON'
{"10": {"question": "What is shown?", "choices": ["a temple", "a car"], "answer": 0, "image": "image.png", "subject": "social science"},
 "11": {"question": "Which is a noun?", "choices": ["run", "table", "blue"], "answer": 1, "image": null, "subject": "language science"},
 "12": {"question": "What animal?", "choices": ["dog", "cat"], "answer": 1, "image": "image.png", "subject": "natural science"}}
JSON
echo '{"test": ["10", "11", "12"]}' >"$T/sqa/pid_splits.json"
cat >"$T/sqa_q.json" <<'JSON'
[{"id": "10", "image": "china.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is shown?\nA. a temple\nB. a car"}, {"from": "gpt", "value": "A"}]},
 {"id": "11", "conversations": [{"from": "human", "value": "Which is a noun?\nA. run\nB. table\nC. blue"}, {"from": "gpt", "value": "B"}]},
 {"id": "12", "image": "chelsea.png", "conversations": [{"from": "human", "value": "<image>\nWhat animal?\nA. dog\nB. cat"}, {"from": "gpt", "value": "B"}]}]
JSON
cat >"$T/sqa_ans.jsonl" <<'JSON'
{"question_id": "10", "prompt": "<image>\nWhat is shown?", "text": "The answer is A."}
{"question_id": "11", "prompt": "Which is a noun?", "text": "B. table"}
{"question_id": "12", "prompt": "<image>\nWhat animal?", "text": "The answer is B"}
JSON
"$STIC" eval --benchmark scienceqa --data "$T/sqa_q.json" --annotations "$T/sqa" --image-dir "$T/imgs" \
  --answers "$T/sqa_ans.jsonl" --out "$T/sa" >"$T/sa.log" 2>&1 && python3 - "$T/sa/summary.json" <<'PY' \
  && ok "scienceqa --answers: accuracy 2/3, IMG 1/2 ('The answer is B' at the end does not parse)" || bad "scienceqa: $(tail -5 "$T/sa.log")"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
assert abs(m["accuracy"] - 200 / 3) < 1e-9 and abs(m["img_accuracy"] - 50) < 1e-9 and m["unparsed_outputs"] == 1, m
PY

# TextVQA: question_id is the image; matched with the annotation by (image, question)
cat >"$T/tvqa.json" <<'JSON'
{"dataset_name": "textvqa", "data": [
 {"question_id": 1, "image_id": "china", "question": "what is written on the sign?", "answers": ["open", "open", "open", "open", "opened", "open", "open", "open", "open", "open"]},
 {"question_id": 2, "image_id": "china", "question": "how many doors?", "answers": ["two", "2", "2", "3", "2", "2", "two", "2", "2", "2"]},
 {"question_id": 3, "image_id": "rocket", "question": "what brand?", "answers": ["nasa", "nasa", "usa", "usa", "nasa", "nasa", "nasa", "usa", "nasa", "nasa"]}]}
JSON
cat >"$T/tvqa_q.jsonl" <<JSON
{"question_id": "china", "image": "china.jpg", "text": "What is written on the sign?\nReference OCR token: OPEN, 24\nAnswer the question using a single word or phrase."}
{"question_id": "china", "image": "china.jpg", "text": "How many doors?$SFX"}
{"question_id": "rocket", "image": "rocket.jpg", "text": "What brand?$SFX"}
JSON
cat >"$T/tvqa_ans.jsonl" <<'JSON'
{"question_id": "rocket", "prompt": "What brand?\nAnswer the question using a single word or phrase.", "text": "U.S.A."}
{"question_id": "china", "prompt": "What is written on the sign?\nReference OCR token: OPEN, 24\nAnswer the question using a single word or phrase.", "text": "Open."}
{"question_id": "china", "prompt": "How many doors?\nAnswer the question using a single word or phrase.", "text": "Two"}
JSON
"$STIC" eval --benchmark textvqa --data "$T/tvqa_q.jsonl" --annotations "$T/tvqa.json" --image-dir "$T/imgs" \
  --answers "$T/tvqa_ans.jsonl" --out "$T/ta" >"$T/ta.log" 2>&1 && python3 - "$T/ta/summary.json" <<'PY' \
  && ok "textvqa --answers: matched by (image, question) out of order; normalised; VQA accuracy (1 + 1 + 0.9) / 3" || bad "textvqa: $(tail -5 "$T/ta.log")"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
# "Open." -> open (9 of 10: 1.0); "Two" -> 2 (9 of 10: 1.0); "U.S.A." -> usa (3 of 10: 0.9)
assert abs(m["accuracy"] - 100 * 2.9 / 3) < 1e-9, m
PY

# MMBench TSV: base64 images, a hint, an empty D, an undecodable image
python3 - "$IMG" "$T/mmb.tsv" <<'PY'
import base64, sys
d, out = sys.argv[1], sys.argv[2]
b = lambda f: base64.b64encode(open(f"{d}/{f}", "rb").read()).decode()
rows = ["index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\tl2-category\timage",
        f"0\tWhat animal is this?\tA photo.\tdog\tcat\tbird\tfish\tB\tobject\tperception\t{b('chelsea.png')}",
        f"1\tWhat is held?\tnan\ta camera\ta cup\ta pen\t\tA\taction\treasoning\t{b('camera.png')}",
        f"2\tWhat is it?\t\tyes\tno\t\t\tA\tobject\tperception\tnot base64 at all"]
open(out, "w").write("\n".join(rows) + "\n")
PY
# LLaVA's --all-rounds answers: question_id = index, round_id = r; q0 right in all 4 rounds, q1 wrong in round 2
cat >"$T/mmb_ans.jsonl" <<'JSON'
{"question_id": 0, "round_id": 0, "prompt": "", "text": "B"}
{"question_id": 0, "round_id": 1, "prompt": "", "text": "A."}
{"question_id": 0, "round_id": 2, "prompt": "", "text": "The answer is D"}
{"question_id": 0, "round_id": 3, "prompt": "", "text": "cat"}
{"question_id": 1, "round_id": 0, "prompt": "", "text": "A"}
{"question_id": 1, "round_id": 1, "prompt": "", "text": "C"}
{"question_id": 1, "round_id": 2, "prompt": "", "text": "A"}
JSON
"$STIC" eval --benchmark mmbench --data "$T/mmb.tsv" --answers "$T/mmb_ans.jsonl" --out "$T/ma" >"$T/ma.log" 2>&1 \
  && python3 - "$T/ma/summary.json" <<'PY' && ok "mmbench --answers (LLaVA's round_id): circular 1/2, vanilla 2/2; the unanswered rounds counted as errors" || bad "mmbench: $(tail -5 "$T/ma.log")"
import json, sys
s = json.load(open(sys.argv[1]))
m = s["metrics"]
assert abs(m["circular_accuracy"] - 50) < 1e-9 and abs(m["vanilla_accuracy"] - 100) < 1e-9, m
assert s["categories"]["object"]["accuracy"] == 100 and s["categories"]["action"]["accuracy"] == 0, s["categories"]
assert s["l2_categories"]["reasoning"]["accuracy"] == 0
assert s["errors"]["count"] == 2 and [e["id"] for e in s["errors"]["items"]] == ["2@0", "2@1"], s["errors"]
PY

# a model run: the tiny checkpoint answers POPE with and without DaR
run() { "$STIC" eval --model $M --benchmark "$@" --max-new-tokens 6 --quiet; }
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/p1" --batch-size 4 >"$T/p1.log" 2>&1 \
  && python3 - "$T/p1" <<'PY' && ok "pope run: LLaVA answer layout, <image> first; the question with a missing image not asked, an error with its id" || bad "pope run: $(tail -5 "$T/p1.log")"
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/answers.jsonl")]
ok = [r for r in rows if "text" in r]
assert len(rows) == 4 and len(ok) == 4, rows
for r in ok:
    assert {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"} <= set(r), r
    assert r["prompt"].startswith("<image>\nIs there") and r["prompt"].endswith("single word or phrase."), r["prompt"]
s = json.load(open(f"{d}/summary.json"))
assert s["metrics"]["accuracy"] in (25.0, 50.0, 75.0, 0.0, 100.0) and s["errors"]["count"] == 1
assert s["errors"]["items"][0]["id"] == "5" and s["errors"]["items"][0]["error"].startswith("image not found"), s["errors"]
per = [json.loads(l) for l in open(f"{d}/per_question.jsonl")]
assert len(per) == 5 and all("parsed" in p for p in per if "error" not in p)
PY
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/p2" --batch-size 1 >/dev/null 2>&1
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/s0" --shard 0/2 >/dev/null 2>&1
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/s1" --shard 1/2 >/dev/null 2>&1
cat "$T/s0/answers.jsonl" "$T/s1/answers.jsonl" >"$T/merged.jsonl"
"$STIC" eval --benchmark pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" \
  --answers "$T/merged.jsonl" --out "$T/sm" >/dev/null 2>&1
python3 - "$T" <<'PY' && ok "the same answers at batch 4 and 1, and from two shards merged (scored by --answers)" || bad "batch/shard answers differ"
import json, sys
t = sys.argv[1]
ans = lambda p: {json.loads(l)["id"]: json.loads(l).get("text") for l in open(p)}
a, b = ans(f"{t}/p1/answers.jsonl"), ans(f"{t}/p2/answers.jsonl")
s = ans(f"{t}/merged.jsonl")
assert a == b == s, (a, b, s)
assert 0 < len(ans(f"{t}/s0/answers.jsonl")) < 4
m = lambda d: json.load(open(f"{t}/{d}/summary.json"))["metrics"]
assert m("p1") == m("sm"), (m("p1"), m("sm"))
PY
"$STIC" eval --benchmark pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" \
  --answers "$T/p1/answers.jsonl" --out "$T/pr" >/dev/null 2>&1
cmp -s <(python3 -c "import json,sys;s=json.load(open(sys.argv[1]));print(json.dumps(s['metrics'],sort_keys=True))" "$T/p1/summary.json") \
       <(python3 -c "import json,sys;s=json.load(open(sys.argv[1]));print(json.dumps(s['metrics'],sort_keys=True))" "$T/pr/summary.json") \
  && ok "--answers on a run's own answers.jsonl reproduces its scores" || bad "--answers rescoring differs"

# DaR on MMBench (base64 images; 4 + 3 rounds share 2 images: 2 descriptions)
run mmbench --data "$T/mmb.tsv" --out "$T/md" --dar --dar-max-new-tokens 8 >"$T/md.log" 2>&1 \
  && python3 - "$T/md" <<'PY' && ok "mmbench --dar: each image described once, the description infused before the question; base64 images decoded" || bad "mmbench --dar: $(tail -5 "$T/md.log")"
import json, sys
d = sys.argv[1]
desc = [json.loads(l) for l in open(f"{d}/dar_descriptions.jsonl")]
assert len(desc) == 2 and all(x["prompt"] == "Detail the composition and subjects within the frame." for x in desc), desc
by_img = {x["image"]: x["description"] for x in desc}
rows = [json.loads(l) for l in open(f"{d}/answers.jsonl")]
assert len(rows) == 7, len(rows)      # the undecodable row is not asked
for r in rows:
    p = r["prompt"]
    assert p.startswith("<image>\nImage description:\n") and "\n\n" in p, p
    assert p.endswith("Answer with the option's letter from the given choices directly."), p
assert any(p["prompt"].startswith("<image>\nImage description:\n" + by_img[i] + "\n\nA photo.\nWhat animal is this?\nA. dog")
           for p in rows for i in by_img), "round 0 of q0"
s = json.load(open(f"{d}/summary.json"))
assert s["dar"] is True and s["errors"]["count"] == 2
assert all(e["error"].startswith("undecodable image") for e in s["errors"]["items"]), s["errors"]
PY
# --limit: the first N questions of the file, asked and scored, nothing else
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/pl" --limit 2 >"$T/pl.log" 2>&1 \
  && python3 - "$T" <<'PY' && ok "--limit 2: the file's first two questions only, the same answers as the full run" || bad "--limit: $(tail -3 "$T/pl.log")"
import json, sys
t = sys.argv[1]
rows = [json.loads(l) for l in open(f"{t}/pl/answers.jsonl")]
assert sorted(r["question_id"] for r in rows) == [1, 2], rows
full = {json.loads(l)["question_id"]: json.loads(l)["text"] for l in open(f"{t}/p1/answers.jsonl")}
assert all(r["text"] == full[r["question_id"]] for r in rows)
s = json.load(open(f"{t}/pl/summary.json"))
assert s["errors"]["count"] == 0 and len([json.loads(l) for l in open(f"{t}/pl/per_question.jsonl")]) == 2, s
PY

# --dar-model: the descriptions come from the other model (its greedy answer to DaR's prompt, as
# stic chat gives it), the answers from the evaluated one
M2=tests/fixtures/parity/next_mistral
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/pdm" --limit 2 \
  --dar --dar-model $M2 --dar-max-new-tokens 8 >"$T/pdm.log" 2>&1
run pope --data "$T/pope_q.jsonl" --annotations "$T/pope" --image-dir "$T/imgs" --out "$T/pdo" --limit 2 \
  --dar --dar-max-new-tokens 8 >/dev/null 2>&1
"$STIC" chat --model $M2 --image "$T/imgs/china.jpg" --prompt "Detail the composition and subjects within the frame." \
  --max-new-tokens 8 --json >"$T/chat_m2.json" 2>/dev/null
python3 - "$T" <<'PY' && ok "--dar-model: descriptions by the other model (equal to its chat answer), questions asked of the evaluated one" || bad "--dar-model: $(tail -3 "$T/pdm.log")"
import json, sys
t = sys.argv[1]
d = {json.loads(l)["image"].split("/")[-1]: json.loads(l)["description"] for l in open(f"{t}/pdm/dar_descriptions.jsonl")}
o = {json.loads(l)["image"].split("/")[-1]: json.loads(l)["description"] for l in open(f"{t}/pdo/dar_descriptions.jsonl")}
chat = json.load(open(f"{t}/chat_m2.json"))
text = chat["text"]
assert d["china.jpg"] == text, (d["china.jpg"], chat)
assert d != o, (d, o)
rows = [json.loads(l) for l in open(f"{t}/pdm/answers.jsonl")]
assert len(rows) == 2, rows
for r in rows:   # each prompt carries the other model's description of its image
    assert any(r["prompt"].startswith("<image>\nImage description:\n" + d[k] + "\n\n") for k in d), r["prompt"]
PY

run mmbench --data "$T/mmb.tsv" --out "$T/mn" >/dev/null 2>&1
"$STIC" eval --compare "$T/mn" "$T/md" >"$T/cmp.md" 2>&1 && grep -q "circular_accuracy" "$T/cmp.md" && grep -q "object accuracy" "$T/cmp.md" \
  && ok "--compare prints the runs side by side with per-category rows" || bad "--compare: $(cat "$T/cmp.md")"
"$STIC" eval --compare "$T/mn" "$T/p1" >"$T/cmp2.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "compare runs of one benchmark" "$T/cmp2.log" && ok "--compare refuses runs of different benchmarks" \
  || bad "--compare mixed (rc $rc): $(cat "$T/cmp2.log")"

# kill -9 during a run, then resume: every question answered once
printf '' >"$T/big_q.jsonl"
for i in $(seq 1 40); do
  f=$(ls "$T/imgs" | sed -n "$(( (i % 6) + 1 ))p")
  echo "{\"question_id\": $i, \"image\": \"$f\", \"text\": \"Describe object $i in detail.\"}" >>"$T/big_q.jsonl"
done
"$STIC" eval --model $M --benchmark llava-bench --data "$T/big_q.jsonl" --image-dir "$T/imgs" --out "$T/k" \
  --max-new-tokens 40 --batch-size 2 --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [ "$(cat "$T/k/answers.jsonl" 2>/dev/null | wc -l)" -ge 4 ] && break; sleep 0.1
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(cat "$T/k/answers.jsonl" 2>/dev/null | wc -l)
"$STIC" eval --model $M --benchmark llava-bench --data "$T/big_q.jsonl" --image-dir "$T/imgs" --out "$T/k" \
  --max-new-tokens 40 --batch-size 2 --quiet >"$T/k.log" 2>&1
python3 - "$T/k" "$before" <<'PY' && ok "kill -9 then resume: $before answers kept, 40 in all, each once; open-ended answers counted, not scored" || bad "resume: $(tail -3 "$T/k.log")"
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/answers.jsonl")]
ids = [r["question_id"] for r in rows]
assert sorted(ids) == list(range(1, 41)), ids
assert 0 < int(sys.argv[2]) < 40
s = json.load(open(f"{sys.argv[1]}/summary.json"))
assert s["metrics"]["answered"] == 40 and "accuracy" not in s["metrics"]
PY

# nothing scorable: exit 1 with a message; a bad file is a located error
echo '{"question_id": 1, "image": "nope.jpg", "text": "Is there a cat?", "label": "yes"}' >"$T/bad_q.jsonl"
run pope --data "$T/bad_q.jsonl" --image-dir "$T/imgs" --out "$T/b1" >"$T/b1.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "none of the 1 questions could be scored" "$T/b1.log" && ok "nothing scorable: exit $rc, said so" \
  || bad "nothing scorable (rc $rc): $(tail -3 "$T/b1.log")"
printf 'index\tquestion\tA\tB\tanswer\n1\tq\ta\tb\tA\nx2\tq\ta\tb\tA\n' >"$T/bad.tsv"
"$STIC" eval --benchmark mmbench --data "$T/bad.tsv" --answers "$T/mmb_ans.jsonl" --out "$T/b2" >"$T/b2.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "bad.tsv:3: index 'x2' is not an integer" "$T/b2.log" && ok "a malformed TSV row: a located error (file:line)" \
  || bad "bad TSV (rc $rc): $(tail -3 "$T/b2.log")"
echo '{"question_id": 1, "text": "Is there a cat?"}' >"$T/bad2.jsonl"
"$STIC" eval --benchmark textvqa --data "$T/bad2.jsonl" --annotations "$T/nope.json" --answers "$T/tvqa_ans.jsonl" --out "$T/b3" >"$T/b3.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "nope.json: no such file" "$T/b3.log" && ok "a missing annotation file is named" || bad "missing annotations (rc $rc): $(cat "$T/b3.log")"

echo "# eval_tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
