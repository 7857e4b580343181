#!/usr/bin/env bash
# GPU machine: the world-tiny base model trained longer than the CPU recipe allows (held-out
# loss and image gain every 250 steps), then `stic eval --benchmark world`. Results in OUT.
#   bash bench/world_tiny_gpu.sh OUT [STEPS]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wtg}; STEPS=${2:-3000}; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=15 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
S=/tmp/bg/stic W=/tmp/worlds/w64p8
$S world --out $W --preset world-tiny --quiet 2>&1 | tail -1
rm -rf /tmp/wtg_run; t0=$(date +%s)
timeout 420 $S train-sft --full --model $W/model --data $W/data/base_train.json --image-dir $W/images \
  --output-dir /tmp/wtg_run --max-steps $STEPS --batch-size 16 --lr 2e-3 --warmup-ratio 0.03 --weight-decay 0 \
  --schedule cosine --log-every 50 --save-every 250 --eval-data $W/data/eval_sft.json --eval-every 250 \
  --eval-examples 128 --no-progress --max-length 1024 --device cuda --dtype fp32 > "$OUT/train.log" 2>&1
echo "train rc=$? in $(( $(date +%s) - t0 )) s"; grep "^eval step\|train-sft:" "$OUT/train.log"
cp /tmp/wtg_run/metrics.jsonl "$OUT/"
m=/tmp/wtg_run; [ -f $m/model.safetensors ] || m=/tmp/wtg_run/$(cat /tmp/wtg_run/latest)
timeout 120 $S eval --model $m --benchmark world --data $W --out /tmp/wtg_run/eval --batch-size 100 \
  --max-new-tokens 160 --device cuda --dtype fp32 --quiet > "$OUT/eval.log" 2>&1
cp /tmp/wtg_run/eval/summary.md "$OUT/eval_summary.md"; head -12 "$OUT/eval_summary.md"; grep -A4 "^## POPE" -m1 "$OUT/eval_summary.md"
