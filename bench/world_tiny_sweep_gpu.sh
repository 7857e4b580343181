#!/usr/bin/env bash
# GPU machine: the world-tiny recipe (fp32 on cuda) over seeds 0, 1, 2 with the method's
# ablations as variants (stic pipeline --seeds --ablations), one seed more per pass until
# BUDGET seconds are spent; compare.md after each finished pass is copied to OUT.
#   bash bench/world_tiny_sweep_gpu.sh OUT [BUDGET_S]
# SEEDS (default "0 1 2") and VARIANT_FLAGS (default --ablations) choose the runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wts}; BUDGET=${2:-420}; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=15 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
world_tiny_gpu_recipe 0 >/tmp/wt_gpu.yaml
t0=$(date +%s); seeds=""
for s in ${SEEDS:-0 1 2}; do
  seeds="${seeds:+$seeds,}$s"; left=$(( BUDGET - ($(date +%s) - t0) ))
  [ $left -le 30 ] && break
  timeout $left /tmp/bg/stic pipeline --recipe /tmp/wt_gpu.yaml --workdir /tmp/wts_run --seeds $seeds ${VARIANT_FLAGS---ablations} \
    --quiet >"$OUT/sweep_$s.log" 2>&1 || { echo "seeds $seeds: stopped (rc $?) after $(( $(date +%s) - t0 )) s"; break; }
  echo "seeds $seeds: done after $(( $(date +%s) - t0 )) s"
  cp /tmp/wts_run/compare.md "$OUT/compare.md"; cp /tmp/wts_run/compare.json "$OUT/compare.json"
  cp /tmp/wts_run/seed$s/timings.json "$OUT/timings_seed$s.json"
done
cat "$OUT/compare.md" 2>/dev/null | head -60
