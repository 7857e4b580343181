#!/usr/bin/env bash
# Data-parallel training through c10d (Gloo on the CPU) and `stic launch`, on the committed tiny
# checkpoint and real photos: 2 ranks x grad-accum 1 end with the same adapter as 1 process with
# grad-accum 2 (train-dpo and train-sft; measured 0.0 max abs difference on 2026-12-06, bound
# 1e-6); a 2-rank run stopped at a checkpoint resumes in 1 process with twice the accumulation
# to the uninterrupted adapter; a killed rank stops the job with its error and the job resumes;
# a malformed launcher environment is named.
# Usage: distributed_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/llava_llama
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
export STIC_THREADS=1  # one torch thread per rank: two ranks share the CI machine's two cores
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

mkdir -p "$T/imgs"
for f in china.jpg camera.png chelsea.png coffee.png flower.jpg rocket.jpg; do cp "$IMG/$f" "$T/imgs/"; done
"$STIC" generate-pref --model $M --image-dir "$T/imgs" --out "$T/pairs.jsonl" --max-new-tokens 12 --quiet >/dev/null 2>&1
cat >"$T/sft.json" <<'JSON'
[
 {"id": "a", "image": "china.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A temple with a red roof."}]},
 {"id": "b", "image": "camera.png", "conversations": [{"from": "human", "value": "<image>\nWho holds the camera?"}, {"from": "gpt", "value": "A man in a coat."}]},
 {"id": "c", "image": "coffee.png", "conversations": [{"from": "human", "value": "<image>\nWhat drink is this?"}, {"from": "gpt", "value": "Coffee in a white cup."}]},
 {"id": "d", "image": "flower.jpg", "conversations": [{"from": "human", "value": "<image>\nName the flower."}, {"from": "gpt", "value": "A pink flower."}]}
]
JSON

# max |a - b| over two adapters' tensors (and their number), no numpy
cmp_adapters() {
  python3 - "$1" "$2" <<'PY'
import array, json, struct, sys
def load(p):
    b = open(p + "/adapter_model.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; a = array.array("f"); a.frombytes(b[8 + n + s:8 + n + e]); out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys() and len(a) > 0
print(max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a))
PY
}
close() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-6 else 1)" "$1"; }

DPO=(train-dpo --model $M --data "$T/pairs.jsonl" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lr 1e-3
     --batch-size 1 --max-steps 3 --no-progress)
"$STIC" "${DPO[@]}" --grad-accum 2 --output-dir "$T/d1" >"$T/d1.log" 2>&1
"$STIC" launch --nproc 2 -- stic "${DPO[@]}" --grad-accum 1 --output-dir "$T/d2" >"$T/d2.log" 2>&1; rc=$?
d=$(cmp_adapters "$T/d1" "$T/d2" 2>&1)
[ $rc -eq 0 ] && close "$d" && grep -q '"world_size": 2' "$T/d2/train_config.json" \
  && python3 - "$T" <<'PY' && ok "train-dpo: 2 Gloo ranks x accum 1 = 1 process x accum 2 (adapter max abs diff $d; losses, grad norms, pair counts equal)" || bad "train-dpo 2 ranks (rc $rc, diff $d): $(tail -4 "$T/d2.log")"
import json, sys
t = sys.argv[1]
a = [json.loads(l) for l in open(f"{t}/d1/metrics.jsonl")]
b = [json.loads(l) for l in open(f"{t}/d2/metrics.jsonl")]
assert len(a) == len(b) == 3
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) < 1e-6 and abs(x["grad_norm"] - y["grad_norm"]) < 1e-5 and x["pairs"] == y["pairs"], (x, y)
    assert abs(x["rewards/margins"] - y["rewards/margins"]) < 1e-6
PY

SFT=(train-sft --model $M --data "$T/sft.json" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lora-dropout 0
     --lr 1e-3 --batch-size 1 --max-steps 2 --no-progress)
"$STIC" "${SFT[@]}" --grad-accum 2 --output-dir "$T/s1" >"$T/s1.log" 2>&1
"$STIC" launch --nproc 2 -- stic "${SFT[@]}" --grad-accum 1 --output-dir "$T/s2" >"$T/s2.log" 2>&1; rc=$?
d=$(cmp_adapters "$T/s1" "$T/s2" 2>&1)
[ $rc -eq 0 ] && close "$d" && ok "train-sft: 2 ranks x accum 1 = 1 process x accum 2 (max abs diff $d)" \
  || bad "train-sft 2 ranks (rc $rc, diff $d): $(tail -4 "$T/s2.log")"

# stopped by 2 ranks at step 2, resumed by 1 process with accum 2 (the same global batch)
"$STIC" launch --nproc 2 -- stic "${DPO[@]}" --grad-accum 1 --save-every 1 --stop-after 2 --output-dir "$T/r" >"$T/r1.log" 2>&1
"$STIC" "${DPO[@]}" --grad-accum 2 --resume --output-dir "$T/r" >"$T/r2.log" 2>&1; rc=$?
d=$(cmp_adapters "$T/d1" "$T/r" 2>&1)
[ $rc -eq 0 ] && close "$d" && grep -q "resuming from .*checkpoint-2" "$T/r2.log" \
  && ok "2 ranks stopped at step 2, 1 process resumed (accum 2): the uninterrupted adapter (diff $d)" \
  || bad "resume across world sizes (rc $rc, diff $d): $(tail -3 "$T/r2.log")"
"$STIC" "${DPO[@]}" --grad-accum 1 --resume --output-dir "$T/r" >"$T/r3.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "grad_accum = 2, this run has 1" "$T/r3.log" \
  && ok "a resume with another global batch (1 process x accum 1) is refused, naming it" || bad "global batch check (rc $rc): $(tail -2 "$T/r3.log")"

# a rank killed with -9: launch stops the other with its error, the job resumes from the checkpoint
LONG=(train-dpo --model $M --data "$T/pairs.jsonl" --image-dir "$T/imgs" --lora-r 4 --lora-alpha 8 --lr 1e-4
      --batch-size 1 --grad-accum 1 --max-steps 150 --save-every 2 --no-progress --output-dir "$T/k")
"$STIC" launch --nproc 2 -- stic "${LONG[@]}" >"$T/k1.log" 2>&1 &
lpid=$!
for _ in $(seq 1 300); do [ -e "$T/k/checkpoint-4" ] && break; sleep 0.1; done
r1=$(for p in $(pgrep -P $lpid); do grep -qz '^RANK=1$' /proc/$p/environ 2>/dev/null && echo $p; done | head -1)
[ -n "$r1" ] && kill -9 "$r1"
wait $lpid; rc=$?
grep -q "rank 1 was killed by signal 9 (Killed); stopping the other 1 rank(s)" "$T/k1.log" && [ $rc -ne 0 ] \
  && ok "rank 1 killed (-9): launch names it, stops rank 0, exits $rc" || bad "killed rank (rc $rc, pid '$r1'): $(tail -3 "$T/k1.log")"
step=$(sed 's/checkpoint-//' "$T/k/latest" 2>/dev/null)
"$STIC" launch --nproc 2 -- stic "${LONG[@]}" --resume >"$T/k2.log" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "resuming from .*checkpoint-$step" "$T/k2.log" && [ "$(tail -1 "$T/k/metrics.jsonl" | python3 -c 'import json,sys;print(json.load(sys.stdin)["step"])')" = 150 ] \
  && ok "the job resumed from checkpoint-$step and finished" || bad "resume after the kill (rc $rc): $(tail -3 "$T/k2.log")"

# generation verbs are not data-parallel yet: refused under launch, naming the way that works
"$STIC" launch --nproc 2 -- stic generate-pref --model $M --image-dir "$T/imgs" --out "$T/g.jsonl" --max-new-tokens 4 \
  --quiet >"$T/g.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "generation runs as one process per part (--shard i/n" "$T/g.log" && [ ! -s "$T/g.jsonl" ] \
  && ok "generate-pref under launch: refused, pointing to --shard" || bad "generation under launch (rc $rc): $(tail -3 "$T/g.log")"

# a launcher environment that cannot be right is named
RANK=2 WORLD_SIZE=2 "$STIC" "${DPO[@]}" --output-dir "$T/e" >"$T/e.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "rank 2 is not below the world size 2 (torchrun)" "$T/e.log" && ok "RANK=2 WORLD_SIZE=2: refused, naming both" \
  || bad "bad environment (rc $rc): $(tail -2 "$T/e.log")"
WORLD_SIZE=two "$STIC" "${DPO[@]}" --output-dir "$T/e2" >"$T/e2.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "WORLD_SIZE='two' is not a non-negative integer" "$T/e2.log" && ok "WORLD_SIZE=two: refused, naming it" \
  || bad "bad WORLD_SIZE (rc $rc): $(tail -2 "$T/e2.log")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
