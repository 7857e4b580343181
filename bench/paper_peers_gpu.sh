#!/usr/bin/env bash
# GPU machine: the paper run's costly stages at 7B shape beside their HF / PEFT peers, in the same
# run on the same card (the answer length of bench/paper_run_gpu.sh, NT = 256 tokens, EOS ignored):
#   bash bench/paper_peers_gpu.sh OUT [pref|describe|dpo|all]
# pref:     stic generate-pref on 64 images (anyres 672 px, T 0.2, 128 slots as the recipe), then HF generate
#           replaying the same 32 pairs (prompts and corruptions) at batch 32, its best batch;
# describe: stic describe on 64 images (128 slots as the recipe), HF generate on 32 at batch 32, greedy, the step-by-step prompt;
# dpo:      train-dpo and the HF + PEFT loss under autocast (bench/bench_dpo.py), pad mode, 2 pairs
#           per step (the paper run's micro-batch on an H100), r 128 / alpha 256, 8 steps each.
# Each part can run in its own call on a warm machine (the build and the model stay in /tmp).
# Needs: a CUDA PyTorch with transformers + peft, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/peers_out}; WHAT=${2:-all}; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
NT=${NT:-256}
t0=$(date +%s)
BUILD_PID=""
[ -x /tmp/bg/stic ] || build_stic "$R/build.log" stic
if [ ! -d "$D/model" ] || [ "$(ls "$D/images" 2>/dev/null | wc -l)" -lt 64 ]; then
  rm -rf "$D"; timeout 300 python3 bench/bench_generate.py prepare --dir "$D" --images 64 2>&1 | grep -v -i warn | tail -3
fi
[ -n "$BUILD_PID" ] && wait_build "$R/build.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
echo "ready after $(( $(date +%s) - t0 )) s"
S=/tmp/bg/stic

if [ "$WHAT" = pref ] || [ "$WHAT" = all ]; then
  rm -rf /tmp/peer_pref
  timeout 200 $S generate-pref --model $D/model --image-dir $D/images --out /tmp/peer_pref/pairs.jsonl --device cuda \
    --max-new-tokens $NT --ignore-eos --batch-size ${SLOTS:-128} --stats "$R/stic_pref.json" --quiet 2>&1 | tail -1
  timeout 300 python3 bench/bench_pref.py hf --dir $D --pairs /tmp/peer_pref/pairs.jsonl --out "$R/hf_pref.json" \
    --new-tokens $NT --batches 32:32 2>&1 | grep -v -i warn | tail -1
fi
if [ "$WHAT" = describe ] || [ "$WHAT" = all ]; then
  STEP=$(python3 -c 'import sys;sys.path.insert(0,"bench");import bench_generate as b;print(b.STEP_PROMPT)')
  ls $D/images/*.png | head -64 >/tmp/peer_describe_images.txt
  rm -rf /tmp/peer_desc
  timeout 200 $S describe --model $D/model --data /tmp/peer_describe_images.txt --out /tmp/peer_desc/desc.jsonl \
    --device cuda --prompt "$STEP" --max-new-tokens $NT --ignore-eos --batch-size ${SLOTS:-128} --stats "$R/stic_describe.json" --quiet 2>&1 | tail -1
  timeout 300 python3 bench/bench_generate.py hf --dir $D --out "$R/hf_describe.json" --new-tokens $NT \
    --batches 32:32 2>&1 | grep -v -i warn | tail -1
fi
if [ "$WHAT" = dpo ] || [ "$WHAT" = all ]; then
  python3 bench/bench_dpo.py data --dir $D
  timeout 240 python3 bench/bench_dpo.py hf --autocast --dir $D --pairs 2 --steps 8 --out "$R/dpo_hfac_p2.json" 2>&1 \
    | grep -v -i warn | tail -1
  rm -rf /tmp/peer_dpo
  timeout 240 $S train-dpo --model $D/model --data $D/dpo_pairs.jsonl --output-dir /tmp/peer_dpo \
    --device cuda --dtype bf16 --image-mode pad --template vicuna_v1 --lora-r 128 --lora-alpha 256 --batch-size 2 \
    --max-steps 8 --lr 1e-7 --peak-tflops 989 --log-every 1 --max-length 2048 --no-progress >"$R/stic_dpo_p2.log" 2>&1
  echo "stic dpo rc=$?"
  python3 bench/bench_dpo.py stic-summary --metrics /tmp/peer_dpo/metrics.jsonl --pairs 2 --peak /nonexistent \
    --impl stic --out "$R/dpo_stic_p2.json" | tail -1
fi
# the table of whatever has been measured so far in OUT
python3 - "$R" <<'EOF' | tee "$R/peers.md"
import json, os, sys
r = sys.argv[1]
def j(n):
    p = os.path.join(r, n)
    return json.load(open(p)) if os.path.exists(p) else None
print("| stage | stic | HF / PEFT peer (best batch) | stic / peer |")
print("|---|---|---|---|")
s, h = j("stic_pref.json"), j("hf_pref.json")
if s and h:
    hb = max(h, key=lambda x: x["img_s"])
    print(f"| generate-pref, images/s | {s['images_per_s']:.3f} ({s['images']} images) | "
          f"{hb['img_s']:.3f} (batch {hb['batch']}, {hb['images']} images) | {s['images_per_s'] / hb['img_s']:.1f}x |")
s, h = j("stic_describe.json"), j("hf_describe.json")
if s and h:
    hb = max(h, key=lambda x: x["img_s"])
    print(f"| describe, images/s | {s['images_per_s']:.3f} | {hb['img_s']:.3f} (batch {hb['batch']}, {hb['requests']} images) | "
          f"{s['images_per_s'] / hb['img_s']:.1f}x |")
s, h = j("dpo_stic_p2.json"), j("dpo_hfac_p2.json")
if s and h:
    print(f"| train-dpo, pairs/s (2 per step) | {s['pairs_per_s']:.3f} (MFU {100 * s['mfu']:.1f}%) | "
          f"{h['pairs_per_s']:.3f} (MFU {100 * h['mfu']:.1f}%, autocast) | {s['pairs_per_s'] / h['pairs_per_s']:.2f}x |")
EOF
echo "done after $(( $(date +%s) - t0 )) s"
