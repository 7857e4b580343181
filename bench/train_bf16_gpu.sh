#!/usr/bin/env bash
# bf16 LoRA training of the 7B-shaped benchmark model on the GPU machine (the STIC stage-1/2
# workload's shape): anyres 672x672 images (2928 image tokens) + a ~230-token answer, LoRA r=128
# on every decoder linear layer, bf16 weights with fp32 adapters, AdamW. Logs tokens/s and MFU
# (6 x LM parameters per token against --peak-tflops 989, the H100/H200 dense bf16 peak).
#   bash bench/train_bf16_gpu.sh OUT [STEPS]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/tb}; STEPS=${2:-16}; D=/tmp/stic-bench; mkdir -p "$OUT"
. bench/common.sh
build_stic "$OUT/build.log" stic
prepare_bench_model
wait_build "$OUT/build.log"
python3 - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
answer = ("The image shows a detailed scene. In the foreground there are several objects with clear "
          "shapes and colours, and the background is softly lit. ") * 8
recs = [{"id": f"t{i}", "image": f"{d}/images/{i:04d}.png",
         "conversations": [{"from": "human", "value": "<image>\nDescribe the image in detail."},
                           {"from": "gpt", "value": answer}]} for i in range(64)]
json.dump(recs, open(f"{d}/sft.json", "w"))
EOF
run() {  # NAME BATCH EXTRA...
  local name=$1 bs=$2; shift 2
  rm -rf /tmp/tb_run
  timeout 240 /tmp/bg/stic train-sft --model $D/model --data $D/sft.json --output-dir /tmp/tb_run --device cuda \
    --dtype bf16 --lora-r 128 --lora-alpha 256 --batch-size $bs --lr 2e-5 --max-steps $STEPS --log-every 2 \
    --peak-tflops 989 --max-length 4096 --no-progress "$@" >"$OUT/train_$name.log" 2>&1
  echo "$name rc=$?"; tail -2 "$OUT/train_$name.log"
  cp /tmp/tb_run/metrics.jsonl "$OUT/metrics_$name.jsonl" 2>/dev/null
  python3 - "$OUT/metrics_$name.jsonl" "$name" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"mfu"' in l]
rows = rows[2:] or rows  # skip the warm-up steps
tok = sum(r["tokens_per_s"] for r in rows) / len(rows); mfu = sum(r["mfu"] for r in rows) / len(rows)
print(f"{sys.argv[2]}: {tok:.0f} tok/s, MFU {100 * mfu:.1f}% (mean of {len(rows)} logs), last loss {rows[-1].get('loss')}")
EOF
  nvidia-smi --query-gpu=name --format=csv,noheader
}
run gc_b8 8 --gradient-checkpointing
run b4 4
