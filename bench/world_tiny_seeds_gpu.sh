#!/usr/bin/env bash
# GPU machine: the world-tiny recipe (fp32 on cuda) for several world seeds at once — one
# `stic pipeline --seeds S` process per seed on the one card (world-tiny leaves it mostly idle),
# then `stic pipeline --seeds 0,1,2` over the same workdir, which finds every stage done and
# writes compare.md (mean ± std). Resumable: a second call on the same machine goes on where
# the first stopped.
#   bash bench/world_tiny_seeds_gpu.sh OUT [BUDGET_S]     SEEDS (default "0 1 2"), VARIANT_FLAGS (default --ablations)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wts}; BUDGET=${2:-420}; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
[ -x /tmp/bg/stic ] || { JOBS=15 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
world_tiny_gpu_recipe 0 >/tmp/wt_gpu.yaml
W=/tmp/wts_run; t0=$(date +%s); seeds=""
for s in ${SEEDS:-0 1 2}; do
  seeds="${seeds:+$seeds,}$s"
  OMP_NUM_THREADS=4 timeout "$BUDGET" /tmp/bg/stic pipeline --recipe /tmp/wt_gpu.yaml --workdir $W --seeds $s \
    ${VARIANT_FLAGS---ablations} --quiet >"$OUT/seed_$s.log" 2>&1 &
done
wait
echo "seed runs ended after $(( $(date +%s) - t0 )) s"
timeout 60 /tmp/bg/stic pipeline --recipe /tmp/wt_gpu.yaml --workdir $W --seeds $seeds ${VARIANT_FLAGS---ablations} --quiet \
  >"$OUT/compare.log" 2>&1 && echo "compare: done" || { echo "compare: not all stages done"; tail -3 "$OUT/compare.log"; }
cp $W/compare.md $W/compare.json "$OUT/" 2>/dev/null
for s in ${SEEDS:-0 1 2}; do cp $W/seed$s/timings.json "$OUT/timings_seed$s.json" 2>/dev/null; done
# every finished evaluation and report, so a run cut off by the budget still leaves its numbers
(cd $W && find . \( -name summary.json -o -name "report.md" -o -name "*.summary.json" -o -name "metrics.jsonl" \) -print0 \
  | tar czf "$OUT/partial.tgz" --null -T - 2>/dev/null)
cat "$OUT/compare.md" 2>/dev/null | head -80
