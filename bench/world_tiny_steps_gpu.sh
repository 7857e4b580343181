#!/usr/bin/env bash
# GPU machine: how the world-tiny base model scales with pretraining steps (the CPU recipe's
# stages at more steps, fp32 like the CPU). Runs the pipeline with pretrain P + base B steps,
# also scores the pretrained (caption-only) model. Results packed into OUT/world_tiny_steps.tgz.
#   bash bench/world_tiny_steps_gpu.sh OUT P B
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wts}; P=${2:-2400}; B=${3:-300}; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
R=/tmp/wt_steps.yaml WD=/tmp/wt_steps
sed -e "s/^device: cpu/device: cuda/; s/^dtype: auto/dtype: fp32/; s/^threads: 2/threads: 4/" recipes/world-tiny.yaml |
  awk -v P="$P" -v B="$B" '/^pretrain:/{s="p"} /^base:/{s="b"} /^instruct:/{s=""} /max_steps:/{ if(s=="p") sub(/[0-9]+/,P); else if(s=="b") sub(/[0-9]+/,B) } {print}' > $R
grep -n "max_steps\|device\|dtype" $R
t0=$(date +%s)
timeout 400 /tmp/bg/stic pipeline --recipe $R --workdir $WD --quiet > "$OUT/pipeline.log" 2>&1
echo "pipeline rc=$? in $(( $(date +%s) - t0 )) s"; cat $WD/timings.json
timeout 60 /tmp/bg/stic eval --model $WD/pretrain --benchmark world --data $WD/world --out $WD/eval_pretrain --batch-size 100 \
  --max-new-tokens 160 --device cuda --dtype fp32 --quiet > "$OUT/eval_pretrain.log" 2>&1
for e in eval_pretrain eval; do echo "== $e"; head -6 $WD/$e/summary.md | tail -2; grep -A12 "^## Questions" $WD/$e/summary.md | tail -8; grep "| all" $WD/$e/summary.md; done
(cd $WD && tar czf "$OUT/world_tiny_steps.tgz" timings.json logs eval/summary.md eval/per_item.jsonl eval_pretrain/summary.md \
   eval_pretrain/per_item.jsonl pretrain/metrics.jsonl base/metrics.jsonl 2>/dev/null)
