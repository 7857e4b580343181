#!/usr/bin/env bash
# GPU machine: several world-tiny base-model recipes side by side on one GPU (fp32), each with
# held-out loss / image gain every 250 steps and `stic eval --benchmark world` at the end.
# Variants are NAME:BATCH:LR:STEPS; results in OUT/sweep.tgz.
#   bash bench/world_tiny_sweep.sh OUT A:8:2e-3:2000 B:16:4e-3:2000 ...
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/sweep}; shift; R=/tmp/sweep_results; rm -rf $R /tmp/sweep_runs; mkdir -p $R "$OUT"
trap 'tar czf "$OUT/sweep.tgz" -C /tmp sweep_results' EXIT
. bench/common.sh; use_deps_tools
JOBS=15 build_stic $R/build.log stic; wait_build $R/build.log
S=/tmp/bg/stic W=/tmp/worlds/w64p8
$S world --out $W --preset world-tiny --quiet > $R/world.log 2>&1
run() {
  IFS=: read -r n bs lr steps <<< "$1"
  local t0=$(date +%s)
  timeout 330 $S train-sft --full --model $W/model --data $W/data/base_train.json --image-dir $W/images \
    --output-dir /tmp/sweep_runs/$n --max-steps $steps --batch-size $bs --lr $lr --warmup-ratio 0.03 --weight-decay 0 \
    --schedule cosine --log-every 50 --save-every 500 --eval-data $W/data/eval_sft.json --eval-every 250 \
    --eval-examples 128 --no-progress --max-length 1024 --device cuda --dtype fp32 > $R/train_$n.log 2>&1
  echo "$n train rc=$? $(( $(date +%s) - t0 )) s" >> $R/timeline.txt
  cp /tmp/sweep_runs/$n/metrics.jsonl $R/metrics_$n.jsonl
  local m=/tmp/sweep_runs/$n; [ -f $m/model.safetensors ] || m=/tmp/sweep_runs/$n/$(cat /tmp/sweep_runs/$n/latest)
  timeout 100 $S eval --model $m --benchmark world --data $W --out /tmp/sweep_runs/$n/eval --batch-size 100 \
    --max-new-tokens 160 --device cuda --dtype fp32 --quiet > $R/eval_$n.log 2>&1
  cp /tmp/sweep_runs/$n/eval/summary.md $R/eval_$n.md
}
for v in "$@"; do run "$v" & done
wait
cat $R/timeline.txt
for f in $R/train_*.log; do echo "== $f"; grep "^eval step" $f | awk 'NR%2==0' ; done
for f in $R/eval_*.md; do echo "== $f"; sed -n 5p $f; grep -E "^\| (color|shape|position|count) " $f | tr '\n' ' '; echo; grep "^| all" $f; done
