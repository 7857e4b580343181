#!/usr/bin/env bash
# End-to-end tests of the stic binary: HF's greedy tokens through `stic chat`, the output
# contracts (--json, --dump-logits), and bad input (one located line on stderr, exit 1, no
# partial output file). Usage: cli_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
FIX=tests/fixtures/parity
IMG=tests/fixtures/images
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

# expect_fail NAME PATTERN CMD... : exit code 1, exactly one stderr line matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE "$pat" "$T/err"; then ok "$name"
  else bad "$name (rc=$rc, $lines stderr lines: $(head -c 300 "$T/err"))"; fi
}

# 1. HF's greedy tokens for every parity case, through the CLI
python3 - "$STIC" <<'PY'
import json, subprocess, sys
stic = sys.argv[1]
m = json.load(open("tests/fixtures/parity/manifest.json"))
bad = 0
for c in m["cases"]:
    cmd = [stic, "chat", "--model", "tests/fixtures/parity/" + c["model"], "--image",
           "tests/fixtures/images/" + c["image"], "--prompt", c["user"], "--template", c["template"],
           "--max-new-tokens", "16", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL - chat {c['case']}: rc {r.returncode}: {r.stderr.strip()}"); bad += 1; continue
    j = json.loads(r.stdout)
    want = (c["greedy"], c["num_input_tokens"], c["num_image_tokens"])
    got = (j["token_ids"], j["num_input_tokens"], j["num_image_tokens"])
    if got != want:
        print(f"FAIL - chat {c['case']}: got {got}, HF {want}"); bad += 1
    else:
        print(f"ok   - chat {c['case']} == HF greedy ({len(j['token_ids'])} tokens)")
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] && pass=$((pass+1)) || fail=$((fail+1))

# 2. --dump-logits writes a float32 1-D safetensors named "logits" equal to HF's last row
"$STIC" chat --model $FIX/next_mistral --image $IMG/china.jpg --prompt "Describe the image." \
  --max-new-tokens 1 --dump-logits "$T/l.safetensors" >/dev/null 2>"$T/err" && python3 - "$T/l.safetensors" <<'PY' \
  && ok "dump-logits matches HF's last-position logits" || bad "dump-logits ($(cat "$T/err"))"
import json, struct, sys, array, math
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
e = h["logits"]; assert e["dtype"] == "F32" and e["shape"] == [1024], e
ours = array.array("f", b[8 + n + e["data_offsets"][0]: 8 + n + e["data_offsets"][1]])
r = open("tests/fixtures/parity/next_mistral__0.safetensors", "rb").read(); rn = struct.unpack("<Q", r[:8])[0]
rh = json.loads(r[8:8 + rn]); le = rh["logits"]; T, V = le["shape"]
allv = array.array("f", r[8 + rn + le["data_offsets"][0]: 8 + rn + le["data_offsets"][1]])
ref = allv[(T - 1) * V: T * V]
num = math.sqrt(sum((a - b) ** 2 for a, b in zip(ours, ref))); den = math.sqrt(sum(b * b for b in ref))
assert num / den < 1e-3, num / den
PY

# 3. text-only chat works (no image), and the usage error exits 2
"$STIC" chat --model $FIX/llava_llama --prompt "Hello" --max-new-tokens 3 --json >"$T/out" 2>"$T/err" \
  && grep -q '"num_image_tokens":0' "$T/out" && ok "text-only chat" || bad "text-only chat ($(cat "$T/err"))"
"$STIC" chat --prompt x >/dev/null 2>&1; [ $? -eq 2 ] && ok "usage error exits 2" || bad "usage error exit code"
"$STIC" >/dev/null 2>&1; [ $? -eq 2 ] && ok "no verb exits 2" || bad "no verb exit code"

# 4. bad input
expect_fail "missing model folder" "no-such-model.*does not exist" \
  "$STIC" chat --model "$T/no-such-model" --prompt hi
mkdir -p "$T/nocfg"; expect_fail "folder without config.json" "config.json.*missing" \
  "$STIC" chat --model "$T/nocfg" --prompt hi
cp -r $FIX/next_mistral "$T/trunc"
truncate -s 200000 "$T/trunc/model.safetensors"
expect_fail "truncated safetensors" "model.safetensors: file is truncated: tensor '.*' needs bytes" \
  "$STIC" chat --model "$T/trunc" --prompt hi
cp -r $FIX/next_mistral "$T/hdr"; printf '\xff\xff\xff\xff\x00\x00\x00\x00garbage' >"$T/hdr/model.safetensors"
expect_fail "bad safetensors header" "model.safetensors: bad safetensors header length" \
  "$STIC" chat --model "$T/hdr" --prompt hi
cp -r $FIX/next_mistral "$T/arch"; sed -i 's/"model_type": "llava_next"/"model_type": "blip_2"/' "$T/arch/config.json"
expect_fail "unknown architecture" "config.json: unknown model_type 'blip_2' \(expected llava, llava_next" \
  "$STIC" chat --model "$T/arch" --prompt hi
cp -r $FIX/next_mistral "$T/extra"
python3 - "$T/extra/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
h["surplus.weight"] = {"dtype": "F32", "shape": [1], "data_offsets": [end, end + 4]}
hs = json.dumps(h).encode(); hs += b" " * ((8 - (len(hs) + 8) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(hs)) + hs + b[8 + n:] + b"\0\0\0\0")
PY
expect_fail "unexpected tensor" "unexpected tensor 'surplus.weight'" "$STIC" chat --model "$T/extra" --prompt hi
expect_fail "corrupt image" "truncated.jpg" \
  "$STIC" chat --model $FIX/next_mistral --image $IMG/truncated.jpg --prompt hi
expect_fail "missing image" "nope.jpg" \
  "$STIC" chat --model $FIX/next_mistral --image "$T/nope.jpg" --prompt hi
expect_fail "two <image> markers for one image" "2 <image> markers but 1 image" \
  "$STIC" chat --model $FIX/next_mistral --image $IMG/china.jpg --prompt "<image> and <image>"
expect_fail "raw prompt without <image>" "raw.*0 <image> markers but 1 image" \
  "$STIC" chat --model $FIX/next_mistral --image $IMG/china.jpg --prompt "no marker" --template raw
expect_fail "fp16 on CPU" "fp16 needs a CUDA device" \
  "$STIC" chat --model $FIX/next_mistral --prompt hi --dtype fp16
# a failed run leaves no output file behind
"$STIC" chat --model $FIX/next_mistral --image $IMG/truncated.jpg --prompt hi --dump-logits "$T/none.safetensors" 2>/dev/null
[ ! -e "$T/none.safetensors" ] && [ -z "$(ls "$T" | grep none)" ] && ok "failed run writes no logits file" || bad "partial output left"

# 4b. export --layout: llava-hf -> original -> llava-hf, and original -> llava-hf (the <image>
# token added): each conversion chats its source's greedy tokens with the same image token count
"$STIC" export --model $FIX/next_mistral --out "$T/x_orig" --layout original --dtype fp32 >/dev/null 2>"$T/err" \
  && "$STIC" export --model "$T/x_orig" --out "$T/x_hf" --layout llava-hf --dtype fp32 >/dev/null 2>>"$T/err" \
  && "$STIC" export --model $FIX/orig_mistral --out "$T/o_hf" --layout llava-hf --dtype fp32 >/dev/null 2>>"$T/err" \
  && [ -s "$T/x_orig/vision_tower/model.safetensors" ] && [ -s "$T/o_hf/preprocessor_config.json" ] \
  && python3 - "$STIC" "$T" <<'PY' && ok "export --layout: both ways, same greedy tokens" || bad "export --layout ($(head -c 600 "$T/err"))"
import json, subprocess, sys
stic, t = sys.argv[1], sys.argv[2]
def chat(m):
    r = subprocess.run([stic, "chat", "--model", m, "--image", "tests/fixtures/images/china.jpg", "--prompt",
                        "What is shown in this image?", "--template", "mistral_instruct", "--max-new-tokens", "12",
                        "--json"], capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    return j["token_ids"], j["num_image_tokens"]
for src, outs in (("next_mistral", ("x_orig", "x_hf")), ("orig_mistral", ("o_hf",))):
    ref = chat("tests/fixtures/parity/" + src)
    for m in outs:
        got = chat(t + "/" + m)
        assert got == ref, (m, got, ref)
c = json.load(open(t + "/x_orig/config.json"))
assert c["model_type"] == "llava_mistral" and c["image_aspect_ratio"] == "anyres", c
c = json.load(open(t + "/o_hf/config.json"))
assert c["model_type"] == "llava_next" and c["image_token_index"] == 1000 and c["text_config"]["vocab_size"] == 1024, c
PY
expect_fail "export: unknown --layout" "layout 'hf': unknown layout \(expected llava-hf or original\)" \
  "$STIC" export --model $FIX/llava_llama --out "$T/x_bad" --layout hf
cp -r $FIX/orig_mistral "$T/notok" && rm "$T/notok/tokenizer_config.json"
expect_fail "export --layout llava-hf: no tokenizer file to hold <image>" \
  "notok/tokenizer_config.json: missing; the llava-hf layout needs an \"<image>\" token in the tokenizer" \
  "$STIC" export --model "$T/notok" --out "$T/x_notok" --layout llava-hf

# 5. the built-in world (stic world --preset world-smoke): built in seconds, loadable, resumable
start=$(date +%s%N)
"$STIC" world --out "$T/world" --preset world-smoke --quiet >"$T/out" 2>"$T/err"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc -eq 0 ] && [ -f "$T/world/world.json" ] && [ -f "$T/world/model/model.safetensors" ]; then
  ok "world --preset world-smoke (${ms} ms)"
else bad "world --preset world-smoke (rc=$rc: $(cat "$T/err"))"; fi
"$STIC" chat --model "$T/world/model" --image "$T/world/images/eval/eval_000000.png" --prompt "Describe the image."   --max-new-tokens 4 --json >"$T/out" 2>"$T/err" && grep -q '"num_image_tokens":36' "$T/out"   && ok "chat on the world's random-init model" || bad "chat on the world model ($(cat "$T/err"))"
rm "$T/world/images/base/base_000005.png"
"$STIC" world --out "$T/world" --preset world-smoke --quiet >/dev/null 2>"$T/err"   && grep -q "(1 rendered, 95 already there)" "$T/err" && ok "world resumes: only the missing image is redone" \
  || bad "world resume ($(cat "$T/err"))"
( cd "$T" && "$STIC" world --out rel_world --preset world-smoke --quiet >/dev/null 2>"$T/err" ) \
  && [ -f "$T/rel_world/model/tokenizer.model" ] && ok "world with a relative --out (tokenizer trained)" \
  || bad "world with a relative --out ($(cat "$T/err"))"
expect_fail "unknown world preset" "unknown world preset 'world-huge' \(valid presets: world-smoke, world-tiny, world-small\)" \
  "$STIC" world --out "$T/world2" --preset world-huge
expect_fail "folder holds another world" "holds a different world \(preset world-smoke, seed 0" \
  "$STIC" world --out "$T/world" --preset world-smoke --seed 5
python3 - "$T/world" >"$T/perfect.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1] + "/gt/eval_answers.jsonl"):
    a = json.loads(line); print(json.dumps({"id": a["id"], "text": a["answer"]}))
PY
"$STIC" world-score --world "$T/world" --predictions "$T/perfect.jsonl" --out "$T/scores" >"$T/out" 2>"$T/err" \
  && grep -q "^| 100.0 | 100.0 | 0.0 | 0.0 |" "$T/out" && [ -f "$T/scores/per_item.jsonl" ] \
  && ok "world-score: ground truth scores 100%" || bad "world-score ($(cat "$T/err") $(head -5 "$T/out"))"

# 6. train-sft: LoRA SFT on the tiny checkpoint; stop + --resume; PEFT files; bad input
SFT=(train-sft --model $FIX/llava_llama --data tests/fixtures/peft/sft_data.json --image-dir $IMG
     --output-dir "$T/sft" --max-steps 3 --lora-r 4 --lora-alpha 8 --lr 1e-3 --save-every 1 --no-progress)
"$STIC" "${SFT[@]}" --stop-after 2 >"$T/out" 2>"$T/err" && "$STIC" "${SFT[@]}" --resume >"$T/out" 2>"$T/err" \
  && [ -f "$T/sft/adapter_model.safetensors" ] && [ -f "$T/sft/adapter_config.json" ] \
  && [ "$(cat "$T/sft/latest")" = "checkpoint-3" ] \
  && python3 -c "import json,sys; s=[json.loads(l)['step'] for l in open(sys.argv[1])]; assert s==[1,2,3], s" "$T/sft/metrics.jsonl" \
  && ok "train-sft: stop at 2, resume to 3, adapter + metrics.jsonl" || bad "train-sft resume ($(cat "$T/err"))"
expect_fail "train-sft refuses to overwrite an earlier run" "holds checkpoints of an earlier run; pass --resume" \
  "$STIC" "${SFT[@]}"
expect_fail "train-sft --resume refuses another data order" 'data_order = "shuffled", this run has "sort_within_step"' \
  "$STIC" "${SFT[@]}" --resume --sort-within-step
printf '[{"id":"x","conversations":[{"from":"human","value":"<image>\\nhi"},{"from":"gpt","value":"yo"}]},
 {"id":"y","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello"}]}]' >"$T/bad.json"
"$STIC" train-sft --model $FIX/llava_llama --data "$T/bad.json" --output-dir "$T/sft2" --max-steps 1 --lora-r 2 \
  --no-progress >"$T/out" 2>"$T/err" && grep -q "record 0 (id x): the text has <image> but the record has no \"image\" field" "$T/err" \
  && grep -q "skipped 1 (image_without_file 1)" "$T/err" && [ "$(wc -l <"$T/sft2/errors.jsonl")" -eq 1 ] \
  && ok "train-sft skips a bad record, counts it and goes on" || bad "train-sft bad record ($(cat "$T/err"))"
expect_fail "train-sft: missing data file" "nonexist.json: file does not exist" \
  "$STIC" train-sft --model $FIX/llava_llama --data "$T/nonexist.json" --output-dir "$T/sft3"

# 7. train-vision: the world model's tower alone; stop + --resume; bad input names file and line
TV=(train-vision --model "$T/world/model" --world "$T/world" --output-dir "$T/tv" --max-steps 4 --batch-size 4
    --save-every 1 --log-every 1 --eval-examples 8 --no-progress)
"$STIC" "${TV[@]}" --stop-after 2 >"$T/out" 2>"$T/err" && "$STIC" "${TV[@]}" --resume >"$T/out" 2>"$T/err" \
  && [ -s "$T/tv/model.safetensors" ] && [ "$(cat "$T/tv/latest")" = "checkpoint-4" ] \
  && python3 -c "import json,sys; s=[json.loads(l)['step'] for l in open(sys.argv[1])]; assert s==[1,2,3,4], s" "$T/tv/metrics.jsonl" \
  && grep -q "held-out shape accuracy" "$T/err" \
  && ok "train-vision: stop at 2, resume to 4, model + metrics.jsonl" || bad "train-vision ($(cat "$T/err"))"
mkdir -p "$T/badworld/gt" && cp -r "$T/world/images" "$T/badworld/" && head -3 "$T/world/gt/base_scenes.jsonl" >"$T/badworld/gt/base_scenes.jsonl"
echo '{"id": "x", "objects": [' >>"$T/badworld/gt/base_scenes.jsonl"
expect_fail "train-vision: a malformed scene line is named" "base_scenes.jsonl: line 4: not valid JSON" \
  "$STIC" train-vision --model "$T/world/model" --world "$T/badworld" --output-dir "$T/tv2" --max-steps 1 --no-progress
expect_fail "train-vision: a folder that is not a world" "gt/base_scenes.jsonl: cannot open" \
  "$STIC" train-vision --model "$T/world/model" --world "$T/nonexist" --output-dir "$T/tv3" --max-steps 1 --no-progress

# 8. --image-backend: reaches the preprocessing (other logits than pil, close to them), a
# checkpoint naming a ...Fast processor class selects torchvision, a bad value is a usage error
CH=(chat --image $IMG/china.jpg --prompt "Describe the image." --max-new-tokens 1)
mkdir -p "$T/fast" && for f in $FIX/next_mistral/*; do ln -s "$(realpath "$f")" "$T/fast/"; done
rm "$T/fast/preprocessor_config.json"
python3 -c "import json,sys; p=json.load(open(sys.argv[1])); p['image_processor_type']='LlavaNextImageProcessorFast'; json.dump(p, open(sys.argv[2],'w'))" \
  $FIX/next_mistral/preprocessor_config.json "$T/fast/preprocessor_config.json"
"$STIC" "${CH[@]}" --model $FIX/next_mistral --dump-logits "$T/pil.st" >/dev/null 2>"$T/err" \
  && "$STIC" "${CH[@]}" --model $FIX/next_mistral --image-backend torchvision --dump-logits "$T/tv.st" >/dev/null 2>>"$T/err" \
  && "$STIC" "${CH[@]}" --model "$T/fast" --dump-logits "$T/fast.st" >/dev/null 2>>"$T/err" \
  && "$STIC" "${CH[@]}" --model "$T/fast" --image-backend pil --dump-logits "$T/fastpil.st" >/dev/null 2>>"$T/err" \
  && python3 - "$T/pil.st" "$T/tv.st" "$T/fast.st" "$T/fastpil.st" <<'PY' \
  && ok "--image-backend torchvision changes the pixels; a ...Fast checkpoint defaults to it" || bad "--image-backend ($(cat "$T/err"))"
import json, struct, sys, array, math
def logits(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; e = json.loads(b[8:8 + n])["logits"]
    return array.array("f", b[8 + n + e["data_offsets"][0]: 8 + n + e["data_offsets"][1]])
pil, tv, fast, fastpil = (logits(p) for p in sys.argv[1:])
assert tv == fast, "a ...Fast processor class should select the torchvision backend"
assert pil == fastpil, "--image-backend pil should override the checkpoint"
assert tv != pil, "torchvision and pil preprocessing gave identical logits"
num = math.sqrt(sum((a - b) ** 2 for a, b in zip(tv, pil))); den = math.sqrt(sum(b * b for b in pil))
assert num / den < 1e-2, num / den
PY
"$STIC" chat --model $FIX/llava_llama --prompt x --image-backend cv2 >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "image-backend" "$T/err" && ok "--image-backend cv2 is a usage error (exit 2)" \
  || bad "--image-backend cv2 (rc=$rc: $(head -c 300 "$T/err"))"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
