#!/usr/bin/env bash
# GPU machine (docs/world.md, "Session 7"): world-tiny with every first request asked before its
# image (bench/world_qfirst_probe.py; train-sft --image-marker keep), with K extra question-first
# where/existence records per base image in the pretraining data; K = base: the recipe as shipped.
# All runs at once (fp32); one summary line per run; evals packed into OUT/wq.tgz.
#   bash bench/world_qfirst_probe_gpu.sh OUT K:SEED...     e.g. base:0 0:0 1:0 1:1
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wq}; shift; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
one() {  # K SEED
  local k=$1 s=$2 WD=/tmp/wq/k$1-s$2 R=/tmp/wq_k$1-s$2.yaml log=$OUT/k$1-s$2.log t0
  world_tiny_gpu_recipe "$s" > "$R"
  [ "$k" = base ] || sed -i 's/^  freeze_vision: true.*/&\n  image_marker: keep/' "$R"
  t0=$(date +%s)
  /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --until world --quiet > "$log" 2>&1
  [ "$k" = base ] || python3 bench/world_qfirst_probe.py "$WD/world" "$k" "$s" >> "$log" 2>&1
  timeout 460 /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --quiet >> "$log" 2>&1
  echo "pipeline rc=$? in $(( $(date +%s) - t0 )) s" >> "$log"
  timeout 60 /tmp/bg/stic eval --model "$WD/pretrain" --benchmark world --data "$WD/world" --out "$WD/eval_pretrain" \
    --batch-size 100 --max-new-tokens 160 --device cuda --dtype fp32 --quiet >> "$log" 2>&1
}
for spec in "$@"; do one "${spec%%:*}" "${spec##*:}" & done
wait
for spec in "$@"; do
  n=k${spec%%:*}-s${spec##*:}
  for e in eval_pretrain eval; do echo "$n $e: $(world_eval_line /tmp/wq/$n/$e/summary.md 2>/dev/null)"; done
  tail -1 "$OUT/$n.log"
done
(cd /tmp/wq && tar czf "$OUT/wq.tgz" */eval/summary.md */eval_pretrain/summary.md */eval/per_item.jsonl */pretrain/metrics.jsonl */base/metrics.jsonl 2>/dev/null)
