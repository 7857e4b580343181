#!/usr/bin/env bash
# CPU experiment: does a vision tower trained first with a direct objective make the world-tiny
# base model competent? Trains the ViT alone on the base images' per-cell labels
# (bench/world_vision_probe.py: shape and colour of each grid cell, 2D sin-cos position init),
# writes it into a copy of the world's random-init model, then runs the world-tiny recipe's
# pretrain, base and eval stages from that model with the same settings as `stic pipeline`.
#   [PRETRAIN_ARGS=...] [BASE_ARGS=...] bash bench/world_tiny_vision_init.sh WORLD OUT [PROBE_STEPS] [PRETRAIN_STEPS] [BASE_STEPS]
# (*_ARGS: extra train-sft flags for a stage, e.g. PRETRAIN_ARGS="--mm-vision-tower-lr 0" keeps the
# trained tower frozen there, as LLaVA's alignment stage does)
# WORLD: a built world-tiny world (e.g. out/world-tiny/world). Needs Debian's python3-torch,
# python3-numpy, python3-pil for the probe. docs/world.md, "Session 5", has the result.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$1; OUT=$2; V=${3:-2000}; P=${4:-800}; B=${5:-300}
STIC=${STIC:-build/stic}; export STIC_THREADS=${STIC_THREADS:-2}
mkdir -p "$OUT"
t0=$(date +%s)
if [ ! -f "$OUT/vision_init/model.safetensors" ]; then  # (kept from an earlier run: reused)
  /usr/bin/python3 bench/world_vision_probe.py "$W" --steps "$V" --batch 32 --every 250 --sincos 1 \
    --export "$OUT/vision_init" | tee "$OUT/probe.log"
fi
t1=$(date +%s)
common=(--batch-size 16 --grad-accum 1 --lr 0.001 --warmup-ratio 0.03 --weight-decay 0 --max-grad-norm 1
        --schedule cosine --max-length 1024 --seed 0 --log-every 10 --save-every 100 --device cpu --dtype auto --no-progress)
"$STIC" train-sft --full --model "$OUT/vision_init" --data "$W/data/base_pretrain.json" --image-dir "$W/images" \
  --output-dir "$OUT/pretrain" --max-steps "$P" "${common[@]}" --eval-data "$W/data/eval_pretrain.json" \
  --eval-every $((P / 6)) --eval-examples 64 ${PRETRAIN_ARGS:-} > "$OUT/pretrain.log" 2>&1
t2=$(date +%s)
"$STIC" train-sft --full --model "$OUT/pretrain" --data "$W/data/base_train.json" --image-dir "$W/images" \
  --output-dir "$OUT/base" --max-steps "$B" "${common[@]}" --eval-data "$W/data/eval_sft.json" \
  --eval-every $((B / 6)) --eval-examples 64 ${BASE_ARGS:-} > "$OUT/base.log" 2>&1
t3=$(date +%s)
"$STIC" eval --model "$OUT/base" --benchmark world --data "$W" --out "$OUT/eval" --batch-size 32 --max-new-tokens 160 \
  --device cpu --dtype auto --quiet > "$OUT/eval.log" 2>&1
"$STIC" eval --model "$OUT/pretrain" --benchmark world --data "$W" --out "$OUT/eval_pretrain" --batch-size 32 \
  --max-new-tokens 160 --device cpu --dtype auto --quiet > "$OUT/eval_pretrain.log" 2>&1
t4=$(date +%s)
echo "seconds: vision $((t1 - t0)), pretrain $((t2 - t1)), base $((t3 - t2)), eval (both models) $((t4 - t3))"
grep -h eval_image_gain "$OUT/pretrain/metrics.jsonl" | tail -1
for e in eval_pretrain eval; do echo "== $e"; sed -n 1,30p "$OUT/$e/summary.md"; done
