#!/usr/bin/env bash
# Hostile and broken inputs, end to end: each case is a real broken file (made here from the
# committed tiny checkpoint and data) or a bad value, and each asserts the exit code (1: a
# located error, 2: a usage error), that stderr names the file and the field, and that nothing
# already written is lost.   Usage: robustness_tests.sh path/to/stic   (from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
FIX=tests/fixtures/parity
IMG=tests/fixtures/images
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

# expect RC NAME PATTERN CMD... : exit code RC within 60 s, stderr matching PATTERN (ERE)
expect() {
  local want=$1 name=$2 pat=$3; shift 3
  timeout 60 "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -eq "$want" ] && grep -qE -- "$pat" "$T/err"; then ok "$name"
  else bad "$name (rc=$rc, want $want; stderr: $(head -c 400 "$T/err"))"; fi
}

# --- CLI values: NaN, negative seeds, non-positive step counts are usage errors (exit 2) ---
CHAT=(chat --prompt hi --max-new-tokens 2)
expect 2 "--temperature nan refused" "temperature.*not a finite number" "$STIC" "${CHAT[@]}" --model $FIX/llava_llama --temperature nan
expect 2 "--top-p nan refused" "top-p.*not in \(0, 1\]" "$STIC" "${CHAT[@]}" --model $FIX/llava_llama --top-p nan
expect 2 "--top-p 0 refused" "top-p.*not in \(0, 1\]" "$STIC" "${CHAT[@]}" --model $FIX/llava_llama --top-p 0
expect 2 "--seed -1 refused (not wrapped to 2^64-1)" "seed.*not an integer >= 0" "$STIC" "${CHAT[@]}" --model $FIX/llava_llama --seed -1
start=$(date +%s)
timeout 120 "$STIC" chat --model $FIX/llava_llama --prompt hi --max-new-tokens 1000000 --json >"$T/chat.json" 2>"$T/err"; rc=$?
python3 - "$T/chat.json" "$FIX/llava_llama/config.json" <<'PY' && [ $rc -eq 0 ]   && ok "chat --max-new-tokens 1000000 stops at the context ($(( $(date +%s) - start )) s)" || bad "chat 1e6 tokens (rc=$rc: $(tail -c 300 "$T/err"))"
import json, sys
j, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ctx = c["text_config"]["max_position_embeddings"]
assert j["num_input_tokens"] + len(j["token_ids"]) <= ctx, (j["num_input_tokens"], len(j["token_ids"]), ctx)
PY
SFT=(train-sft --model $FIX/llava_llama --data tests/fixtures/peft/sft_data.json --image-dir $IMG --lora-r 2 --no-progress)
expect 2 "train-sft --max-steps 0 refused" "max-steps" "$STIC" "${SFT[@]}" --output-dir "$T/s0" --max-steps 0
expect 2 "train-sft --max-steps -3 refused" "max-steps" "$STIC" "${SFT[@]}" --output-dir "$T/s0" --max-steps -3
expect 2 "train-sft --lr nan refused" "lr.*not a finite number" "$STIC" "${SFT[@]}" --output-dir "$T/s0" --lr nan
[ ! -e "$T/s0" ] && ok "usage errors write nothing" || bad "a refused train-sft made $T/s0"

# --- request files: a folder, and per-request values out of range (located, skipped) ---
mkdir -p "$T/reqdir"
expect 1 "--requests that is a folder" "reqdir: requests file is a directory, not a file" \
  "$STIC" generate --model $FIX/llava_llama --requests "$T/reqdir" --out "$T/g.jsonl"
cat >"$T/req.jsonl" <<'EOF'
{"id": "good", "prompt": "hi", "max_new_tokens": 2}
{"id": "p5", "prompt": "hi", "top_p": 5}
{"id": "empty_image", "prompt": "hi", "image": ""}
{"id": "neg_seed", "prompt": "hi", "seed": -1}
{"id": "neg_temp", "prompt": "hi", "temperature": -0.5}
EOF
timeout 60 "$STIC" generate --model $FIX/llava_llama --requests "$T/req.jsonl" --out "$T/g.jsonl" >"$T/out" 2>"$T/err"; rc=$?
# (the good request runs; the run then exits 1 naming the skipped lines)
if [ $rc -eq 1 ] && grep -q "req.jsonl: 4 malformed request line(s) were skipped" "$T/err" \
   && grep -q 'req.jsonl:2: top_p must be in (0, 1] (got 5)' "$T/err" \
   && grep -q 'req.jsonl:3: "image" is empty' "$T/err" && grep -q 'req.jsonl:4: "seed" must be an integer >= 0 (got -1)' "$T/err" \
   && grep -q 'req.jsonl:5: temperature must be a finite number >= 0' "$T/err" && grep -q "4 malformed lines" "$T/err" \
   && [ "$(wc -l <"$T/g.jsonl")" -eq 1 ] && grep -q '"id":"good"' "$T/g.jsonl"; then ok "bad request values: located, skipped, the good one runs"
else bad "bad request values (rc=$rc: $(head -c 600 "$T/err"))"; fi

python3 -c "import json; print(json.dumps({'id': 'huge', 'prompt': 'x' * 10_000_000})); print(json.dumps({'id': 'fine', 'prompt': 'hi', 'max_new_tokens': 2}))" >"$T/huge.jsonl"
timeout 60 "$STIC" generate --model $FIX/llava_llama --requests "$T/huge.jsonl" --out "$T/huge.out" >"$T/out" 2>"$T/err"; rc=$?
python3 - "$T/huge.out" <<'PY' && [ $rc -eq 0 ] && ok "a 10 MB prompt: a per-request error by its size, the next request runs"   || bad "10 MB prompt (rc=$rc: $(tail -c 300 "$T/err"))"
import json, sys
by = {j["id"]: j for j in map(json.loads, open(sys.argv[1]))}
assert "prompt of 10000000 bytes is over the limit of 1048576 bytes" in by["huge"]["error"], by["huge"]
assert "error" not in by["fine"] or not by["fine"]["error"], by["fine"]
PY

# --- one writer per output: a second process on a locked --out is refused, the file kept ---
cp "$T/g.jsonl" "$T/g.before"
flock "$T/g.jsonl" sleep 20 & holder=$!
sleep 0.5
expect 1 "a second writer on one --out is refused, naming the holder" "g.jsonl: another process \(pid [0-9]+\) is writing this file" \
  "$STIC" generate --model $FIX/llava_llama --requests "$T/req.jsonl" --out "$T/g.jsonl"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
cmp -s "$T/g.jsonl" "$T/g.before" && ok "the locked output is untouched" || bad "the locked output changed"

# --- training output folders ---
RUN=("${SFT[@]}" --max-steps 2 --lr 1e-3 --save-every 1)
mkdir -p "$T/killed" && echo '{"step": 1, "loss": 3.0}' >"$T/killed/metrics.jsonl"  # killed before its first checkpoint
expect 1 "a used folder without --resume is refused (no second step 1)" "killed: holds metrics.jsonl of an earlier run" \
  "$STIC" "${RUN[@]}" --output-dir "$T/killed"
timeout 120 "$STIC" "${RUN[@]}" --output-dir "$T/killed" --resume >"$T/out" 2>"$T/err" \
  && python3 -c "import json,sys; s=[json.loads(l)['step'] for l in open(sys.argv[1])]; assert s==[1,2], s" "$T/killed/metrics.jsonl" \
  && ok "--resume there starts over: metrics steps 1, 2 once each" || bad "resume before a checkpoint ($(tail -c 400 "$T/err"))"
timeout 120 "$STIC" "${RUN[@]}" --output-dir "$T/killed" --resume >"$T/out" 2>"$T/err"; rc=$?
last=$(python3 -c "import json,sys; print('%.4f' % [json.loads(l) for l in open(sys.argv[1])][-1]['loss'])" "$T/killed/metrics.jsonl")
[ $rc -eq 0 ] && grep -q "last loss $last" "$T/err" && ok "--resume of a finished run reports its last loss ($last)" \
  || bad "finished resume (rc=$rc, want last loss $last: $(tail -c 300 "$T/err"))"
mkdir -p "$T/evil" && echo '{"step": 1}' >"$T/evil/metrics.jsonl" && printf 'checkpoint-999/../../../etc\n' >"$T/evil/latest"
expect 1 "a 'latest' that leaves the folder is not followed" "evil/latest: names 'checkpoint-999/../../../etc', not a checkpoint-N folder" \
  "$STIC" "${RUN[@]}" --output-dir "$T/evil" --resume
flock "$T/killed" sleep 20 & holder=$!
sleep 0.5
expect 1 "a second run in one output folder is refused" "killed: another process \(pid [0-9]+\) is writing" \
  "$STIC" "${RUN[@]}" --output-dir "$T/killed" --resume
kill $holder 2>/dev/null; wait $holder 2>/dev/null
head -c 2000 $IMG/china.jpg >"$T/corrupt.jpg"
printf '[{"id":"only","image":"%s","conversations":[{"from":"human","value":"<image>\\nhi"},{"from":"gpt","value":"yo"}]}]' \
  "$T/corrupt.jpg" >"$T/corrupt.json"
expect 1 "a data set whose only image is corrupt trains nothing" "no micro-batch gave a loss" \
  "$STIC" train-sft --model $FIX/llava_llama --data "$T/corrupt.json" --output-dir "$T/nothing" --max-steps 2 --lora-r 2 --no-progress
[ ! -e "$T/nothing/adapter_model.safetensors" ] && ok "... and writes no adapter" || bad "an adapter was written from no data"
printf '[{"id":"dev","image":"/dev/zero","conversations":[{"from":"human","value":"<image>\\nhi"},{"from":"gpt","value":"yo"}]},
 {"id":"ok","image":"china.jpg","conversations":[{"from":"human","value":"<image>\\nhi"},{"from":"gpt","value":"yo"}]}]' >"$T/dev.json"
timeout 120 "$STIC" train-sft --model $FIX/llava_llama --data "$T/dev.json" --image-dir $IMG --output-dir "$T/dev" --max-steps 1 \
  --lora-r 2 --no-progress >"$T/out" 2>"$T/err" && grep -q "image file /dev/zero is not a regular file" "$T/err" \
  && ok "train-sft: an image that is /dev/zero is named as not a regular file" || bad "/dev/zero image ($(head -c 300 "$T/err"))"

# --- reproducible: two LoRA runs with one --seed (init and dropout) write the same bits ---
for r in a b; do
  timeout 120 "$STIC" "${SFT[@]}" --output-dir "$T/seed_$r" --max-steps 2 --lr 1e-3 --lora-dropout 0.1 --seed 7     >/dev/null 2>"$T/err_$r" || bad "seeded run $r ($(tail -c 300 "$T/err_$r"))"
done
cmp -s "$T/seed_a/adapter_model.safetensors" "$T/seed_b/adapter_model.safetensors"   && python3 - "$T/seed_a/metrics.jsonl" "$T/seed_b/metrics.jsonl" <<'PY' && ok "same --seed, same adapter bits, losses and grad norms"   || bad "two runs with --seed 7 differ"
import json, sys
a, b = ([(j["loss"], j["grad_norm"]) for j in map(json.loads, open(p))] for p in sys.argv[1:])
assert a == b and len(a) == 2, (a, b)
PY

# --- checkpoints: broken safetensors and shard indexes, made from the tiny model ---
python3 - "$FIX/llava_llama" "$T" <<'PY'
import json, os, shutil, struct, sys
src, T = sys.argv[1], sys.argv[2]
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def write(path, h, data):
    hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
def variant(name, edit):
    d = os.path.join(T, name); shutil.copytree(src, d)
    h, data = read(os.path.join(src, "model.safetensors")); data = edit(h, data)
    write(os.path.join(d, "model.safetensors"), h, data)
key = "multi_modal_projector.linear_1.weight"
def as_i32(h, data):
    h[key]["dtype"] = "I32"; return data
def overlap(h, data):  # the projector's bytes also claimed by the tensor after it: shift it back by 4 bytes
    b, e = h[key]["data_offsets"]
    nxt = min((k for k in h if k != "__metadata__" and h[k]["data_offsets"][0] == e), key=lambda k: k)
    nb, ne = h[nxt]["data_offsets"]; h[nxt]["data_offsets"] = [nb - 4, ne - 4]; return data
def huge(h, data):  # a shape whose element count wraps 64 bits
    h[key]["shape"] = [2**62, 2**62, 16]; return data
variant("i32", as_i32); variant("overlap", overlap); variant("huge", huge)
d = os.path.join(T, "evil_index"); shutil.copytree(src, d)
h, _ = read(os.path.join(src, "model.safetensors"))
wm = {k: "model.safetensors" for k in h if k != "__metadata__"}; wm[key] = "../../../../etc/passwd"
json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
PY
expect 1 "an I32 tensor under a float weight" "i32/model.safetensors: tensor 'multi_modal_projector.linear_1.weight' is stored as Int" \
  "$STIC" "${CHAT[@]}" --model "$T/i32"
expect 1 "overlapping data offsets" "overlap/model.safetensors: tensor '.*': data_offsets .* overlap the tensor before it" \
  "$STIC" "${CHAT[@]}" --model "$T/overlap"
expect 1 "a shape product that overflows" "huge/model.safetensors: tensor 'multi_modal_projector.linear_1.weight': shape .* more elements than any file can hold" \
  "$STIC" "${CHAT[@]}" --model "$T/huge"
expect 1 "a shard index entry outside the folder is not opened" "model.safetensors.index.json: weight_map\['multi_modal_projector.linear_1.weight'\] names '../../../../etc/passwd', not a file name" \
  "$STIC" "${CHAT[@]}" --model "$T/evil_index"

# --- recipes: checked whole before the first stage ---
sed 's/^device: cpu/device: tpu/' recipes/world-smoke.yaml >"$T/tpu.yaml"
expect 1 "device: tpu is refused before the world is built" "tpu.yaml: device / dtype: --device 'tpu' is not valid" \
  "$STIC" pipeline --recipe "$T/tpu.yaml" --workdir "$T/tpu_run"
[ ! -e "$T/tpu_run/world" ] && ok "... and nothing was built" || bad "the world was built before the device was checked"
{ cat recipes/world-smoke.yaml; echo "threads: 1"; echo "threads: 2"; } >"$T/dup.yaml"
expect 1 "a key given twice in a recipe" "dup.yaml:[0-9]+:.*'threads' is given twice in the recipe \(first at line [0-9]+\)" \
  "$STIC" pipeline --recipe "$T/dup.yaml" --workdir "$T/dup_run"

expect 1 "pipeline --seeds with a negative seed" "--seeds '0,-1': expected comma-separated non-negative integers" \
  "$STIC" pipeline --recipe recipes/world-smoke.yaml --workdir "$T/neg_run" --seeds 0,-1

echo "robustness tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
