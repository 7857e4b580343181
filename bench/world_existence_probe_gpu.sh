#!/usr/bin/env bash
# GPU machine (docs/world.md, "Session 6"): does the world-tiny base model learn yes/no existence
# answers when each base record starts with K extra existence questions? For each world seed: the
# recipe as shipped (fp32) and, from the same pretrained model, a base stage on the augmented
# records (bench/world_existence_probe.py); both scored on the held-out set. All runs at once.
#   bash bench/world_existence_probe_gpu.sh OUT K SEED...
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wep}; K=${2:-4}; shift 2; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
one() {  # SEED
  local s=$1 WD=/tmp/wep/s$1 R=/tmp/wep_s$1.yaml
  world_tiny_gpu_recipe "$s" > "$R"
  /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --quiet > "$OUT/s$s.log" 2>&1 &
  local p=$!
  while [ ! -f "$WD/pretrain/.done" ] && kill -0 $p 2>/dev/null; do sleep 5; done
  python3 bench/world_existence_probe.py "$WD/world" "$WD/base_exist.json" "$K" "$s" >> "$OUT/s$s.log"
  /tmp/bg/stic train-sft --full --model "$WD/pretrain" --data "$WD/base_exist.json" --image-dir "$WD/world/images" \
    --output-dir "$WD/base_exist" --max-steps 300 --batch-size 8 --grad-accum 2 --sort-within-step --lr 1e-3 \
    --warmup-ratio 0.03 --schedule cosine --seed 0 --mm-vision-tower-lr 0 --device cuda --dtype fp32 --no-progress \
    --log-every 20 >> "$OUT/s$s.log" 2>&1
  /tmp/bg/stic eval --model "$WD/base_exist" --benchmark world --data "$WD/world" --out "$WD/eval_exist" \
    --batch-size 100 --max-new-tokens 160 --device cuda --dtype fp32 --quiet >> "$OUT/s$s.log" 2>&1
  wait $p
}
for s in "$@"; do one "$s" & done
wait
for s in "$@"; do
  for e in eval eval_exist; do
    echo "seed $s $e: $(world_eval_line /tmp/wep/s$s/$e/summary.md)"
  done
done
(cd /tmp/wep && tar czf "$OUT/wep.tgz" */eval/summary.md */eval_exist/summary.md */eval/per_item.jsonl */eval_exist/per_item.jsonl 2>/dev/null)
