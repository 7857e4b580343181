#!/usr/bin/env bash
# The main job. For now: stic chat on a committed tiny LLaVA-NeXT checkpoint and a real photo,
# checked against HF transformers' greedy tokens for the same input (tests/fixtures/parity).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
M=tests/fixtures/parity/next_mistral
IMG=tests/fixtures/images/china.jpg
echo "[demo] stic chat --model $M --image $IMG --prompt 'Describe the image.' --max-new-tokens 16 --json"
out=$(./build/stic chat --model "$M" --image "$IMG" --prompt "Describe the image." --max-new-tokens 16 --json)
echo "$out"
python3 - "$out" <<'PY' 2>/dev/null || echo "[demo] (python3 not found: skipped the comparison with HF)"
import json, sys
ours = json.loads(sys.argv[1])
hf = [c for c in json.load(open("tests/fixtures/parity/manifest.json"))["cases"] if c["case"] == "next_mistral__0"][0]
same = ours["token_ids"] == hf["greedy"]
print(f"[demo] HF transformers {json.load(open('tests/fixtures/parity/manifest.json'))['transformers']} greedy tokens: {hf['greedy']}")
print(f"[demo] identical to HF: {same}; image tokens {ours['num_image_tokens']} (HF {hf['num_image_tokens']}), "
      f"input positions {ours['num_input_tokens']} (HF {hf['num_input_tokens']})")
sys.exit(0 if same else 1)
PY
