#!/usr/bin/env bash
# End-to-end tests of `stic generate`: HF's greedy tokens through the batched engine, error
# records for bad images, malformed lines reported by line number, resume by id, a torn last
# line repaired, and kill -9 in the middle of a run then resume: every id exactly once.
# Usage: generate_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
M=tests/fixtures/parity/next_mistral
IMG=$(realpath tests/fixtures/images)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }

python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
m = json.load(open("tests/fixtures/parity/manifest.json"))
with open(f"{t}/req.jsonl", "w") as f:
    for c in m["cases"]:
        if c["model"] == "next_mistral" and c["image"] != "unpad_probe.png":  # the unpad probe is the parity suite's
            f.write(json.dumps({"id": c["case"], "image": c["image"], "prompt": c["user"]}) + "\n")
    f.write(json.dumps({"id": "bad-image", "image": "truncated.jpg", "prompt": "hi"}) + "\n")
    f.write('{"id": "broken", "prompt": \n')
    f.write(json.dumps({"id": "no-prompt", "image": "china.jpg"}) + "\n")
    f.write(json.dumps({"id": "text", "prompt": "Hello there"}) + "\n")
with open(f"{t}/big.jsonl", "w") as f:
    for i in range(150):
        f.write(json.dumps({"id": f"r{i}", "image": ["china.jpg", "camera.png", "flower.jpg"][i % 3],
                            "prompt": f"Question {i}?"}) + "\n")
PY

"$STIC" generate --model $M --requests "$T/req.jsonl" --out "$T/out.jsonl" --image-dir "$IMG" \
  --max-new-tokens 16 --batch-size 3 >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && ok "malformed lines make the exit code 1" || bad "exit code $rc"
grep -q 'req.jsonl:6: not valid JSON' "$T/log" && ok "malformed JSON named by line" || bad "line 6 not reported: $(cat "$T/log")"
grep -q 'req.jsonl:7: missing "prompt"' "$T/log" && ok "missing field named by line" || bad "line 7 not reported"
python3 - "$T/out.jsonl" <<'PY' && ok "results: HF greedy tokens, error record, text-only" || bad "results"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["id"]: r for r in rows}
assert len(rows) == len(by) == 6, [r["id"] for r in rows]
m = json.load(open("tests/fixtures/parity/manifest.json"))
for c in m["cases"]:
    if c["model"] == "next_mistral" and c["image"] != "unpad_probe.png":
        r = by[c["case"]]
        assert r["token_ids"] == c["greedy"], (c["case"], r["token_ids"], c["greedy"])
        assert r["num_input_tokens"] == c["num_input_tokens"]
assert "truncated.jpg" in by["bad-image"]["error"], by["bad-image"]
assert by["text"]["num_image_tokens"] == 0 and len(by["text"]["token_ids"]) > 0
PY
"$STIC" generate --model $M --requests "$T/req.jsonl" --out "$T/out.jsonl" --image-dir "$IMG" >"$T/log" 2>&1
grep -q "0 requests to run, 6 already in" "$T/log" && [ "$(wc -l <"$T/out.jsonl")" -eq 6 ] \
  && ok "re-run skips finished ids" || bad "re-run: $(cat "$T/log")"

# a torn last line (as left by a kill during a write) is cut, then the request is redone
head -c -40 "$T/out.jsonl" >"$T/torn.jsonl"
"$STIC" generate --model $M --requests "$T/req.jsonl" --out "$T/torn.jsonl" --image-dir "$IMG" \
  --max-new-tokens 16 >"$T/log" 2>&1
python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$T/torn.jsonl')]
assert len(rows)==6 and len({r['id'] for r in rows})==6
" && grep -q "cut a torn last line" "$T/log" && ok "torn last line repaired and redone" || bad "torn line: $(cat "$T/log")"

# kill -9 in the middle, then resume: every id exactly once, none lost
"$STIC" generate --model $M --requests "$T/big.jsonl" --out "$T/big.out" --image-dir "$IMG" \
  --max-new-tokens 300 --ignore-eos --batch-size 2 >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 100); do
  [ -s "$T/big.out" ] && [ "$(wc -l <"$T/big.out")" -ge 10 ] && break; sleep 0.1
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(wc -l <"$T/big.out")
"$STIC" generate --model $M --requests "$T/big.jsonl" --out "$T/big.out" --image-dir "$IMG" \
  --max-new-tokens 300 --ignore-eos --batch-size 4 >"$T/log" 2>&1
python3 - "$T/big.out" "$before" <<'PY' && ok "kill -9 then resume: 150 ids exactly once (killed after $before)" || bad "kill -9 resume"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ids = [r["id"] for r in rows]
assert len(ids) == 150 == len(set(ids)), (len(ids), len(set(ids)))
assert all(len(r["token_ids"]) == 300 for r in rows)
assert 0 < int(sys.argv[2]) < 150, sys.argv[2]
PY

# hostile image paths: /dev/zero, a directory, a PNG header claiming 60000 x 60000 — each a
# per-request error naming the file, within seconds and little memory; the other requests run
python3 - "$T/bomb.png" <<'PY'
import struct, sys, zlib
c = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + c(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                              + c(b"IDAT", zlib.compress(b"\x00" * 100)) + c(b"IEND", b""))
PY
cat >"$T/hostile.jsonl" <<JSON
{"id": "zero", "image": "/dev/zero", "prompt": "<image>\nWhat is it?"}
{"id": "dir", "image": "$T", "prompt": "<image>\nWhat is it?"}
{"id": "bomb", "image": "$T/bomb.png", "prompt": "<image>\nWhat is it?"}
{"id": "good", "image": "$(realpath tests/fixtures/images/china.jpg)", "prompt": "<image>\nWhat is it?"}
JSON
python3 - "$T/hostile.time" timeout 60 "$STIC" generate --model $M --requests "$T/hostile.jsonl" \
  --out "$T/hostile.out" --max-new-tokens 4 >"$T/log" 2>&1 <<'PY'; rc=$?
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(f"{time.time() - t:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.exit(rc)
PY
python3 - "$T/hostile.out" "$T/hostile.time" <<'PY' && ok "hostile images (/dev/zero, a directory, a 60000x60000 PNG header): per-request errors naming the file, bounded; the good request runs (rc $rc)" || bad "hostile images (rc $rc): $(tail -3 "$T/log")"
import json, sys
rows = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
assert "not a regular file" in rows["zero"]["error"] and "/dev/zero" in rows["zero"]["error"], rows["zero"]
assert "a directory" in rows["dir"]["error"], rows["dir"]
assert "exceeds the limit" in rows["bomb"]["error"] and "bomb.png" in rows["bomb"]["error"], rows["bomb"]
assert "text" in rows["good"]
secs, kb = open(sys.argv[2]).read().split()[-2:]
assert float(secs) < 30 and int(kb) < 2_000_000, (secs, kb)
PY

# prompts and token limits against the model's context (max_position_embeddings)
python3 -c "
import json
print(json.dumps({'id': 'long', 'prompt': 'word ' * 40000}))
print(json.dumps({'id': 'short', 'prompt': 'hello', 'max_new_tokens': 1000000}))" >"$T/ctx.jsonl"
timeout 120 "$STIC" generate --model $M --requests "$T/ctx.jsonl" --out "$T/ctx.out" --ignore-eos >"$T/log" 2>&1; rc=$?
python3 - "$T/ctx.out" "$M/config.json" <<'PY' && ok "a prompt longer than the context: a per-request error; max_new_tokens 1e6 stops at the context (rc $rc)" || bad "context limits (rc $rc): $(tail -3 "$T/log")"
import json, sys
rows = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
cfg = json.load(open(sys.argv[2]))
ctx = cfg.get("text_config", cfg).get("max_position_embeddings")
assert "does not fit the model's context of %d" % ctx in rows["long"]["error"], rows["long"]
s = rows["short"]
assert s["finish_reason"] == "length" and s["num_input_tokens"] + len(s["token_ids"]) == ctx, (s["num_input_tokens"], len(s["token_ids"]), ctx)
PY

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
