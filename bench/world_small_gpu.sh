#!/usr/bin/env bash
# GPU machine: the world-small recipe end to end (`stic pipeline`), timed per stage; the report,
# eval summary, timings and training metrics are packed into OUT/world_small.tgz.
#   bash bench/world_small_gpu.sh OUT [TOTAL_S]   (the pipeline is cut off at TOTAL_S after the start)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wsg}; TOTAL=${2:-570}; mkdir -p "$OUT"   # TOTAL: seconds for build + pipeline
. bench/common.sh; use_deps_tools
t0=$(date +%s)
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
echo "build: $(( $(date +%s) - t0 )) s"
WD=/tmp/ws_run; t1=$(date +%s); LIMIT=$(( TOTAL - (t1 - t0) ))
timeout "$LIMIT" /tmp/bg/stic pipeline --recipe recipes/world-small.yaml --workdir $WD --quiet > "$OUT/pipeline.log" 2>&1
echo "pipeline rc=$? in $(( $(date +%s) - t1 )) s"
cat $WD/timings.json 2>/dev/null; tail -5 "$OUT/pipeline.log"
for s in pretrain base; do grep -h "^eval step\|image gain" $WD/logs/$s.log 2>/dev/null | tail -4; tail -2 $WD/logs/$s.log 2>/dev/null; done
head -40 $WD/eval/summary.md 2>/dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
(cd $WD && tar czf "$OUT/world_small.tgz" report.md timings.json recipe.json logs eval/summary.md eval/summary.json \
   pretrain/metrics.jsonl base/metrics.jsonl report 2>/dev/null)
