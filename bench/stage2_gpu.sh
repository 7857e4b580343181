#!/usr/bin/env bash
# STIC stage 2 on the GPU machine: `stic export` checked by HF transformers + PEFT
# (tools/check_export.py on the exports in bench/results/export_check, made beforehand with the
# CPU build), and `stic describe` throughput at 7B shape beside HF generate on the same card:
#   bash bench/stage2_gpu.sh RESULTS_DIR
# describe: 64 images, the step-by-step prompt for every image (the HF peer's prompt), 400 new
# tokens (EOS ignored), batch 64 and 128; HF: LlavaNextForConditionalGeneration.generate with
# the same prompt, 32 images in one batch (its best batch in bench_pref, 2026-12-04).
# Needs: a CUDA PyTorch with transformers + peft, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-stage2}; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
NT=${NT:-400}
build_stic "$R/build.log" stic
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
timeout 240 python3 tools/check_export.py --exported bench/results/export_check --out "$R/export_check.json" 2>&1 \
  | grep -v -i warn | tail -8
prepare_bench_model
STEP=$(python3 -c 'import sys;sys.path.insert(0,"bench");import bench_generate as b;print(b.STEP_PROMPT)')
timeout 300 python3 bench/bench_generate.py hf --dir $D --out "$R/hf_describe.json" --new-tokens $NT \
  --batches ${HF_BATCHES:-32:32} 2>&1 | grep -v -i warn | tail -2
wait_build "$R/build.log"
ls $D/images/*.png | head -64 >/tmp/describe_images.txt
/tmp/bg/stic describe --model $D/model --data /tmp/describe_images.txt --out /tmp/warm/desc.jsonl --device cuda \
  --prompt "$STEP" --max-new-tokens 32 --ignore-eos --batch-size 64 --quiet >/dev/null 2>&1  # warm-up
for bs in 64 128; do
  rm -rf "/tmp/desc_b$bs"
  timeout 300 /tmp/bg/stic describe --model $D/model --data /tmp/describe_images.txt --out "/tmp/desc_b$bs/desc.jsonl" \
    --device cuda --prompt "$STEP" --max-new-tokens $NT --ignore-eos --batch-size $bs --stats "$R/stic_describe_b$bs.json" \
    --quiet 2>&1 | tail -1
done
python3 - "$R" <<'EOF'
import json, sys
r = sys.argv[1]
hf = json.load(open(f"{r}/hf_describe.json"))
best = max(hf, key=lambda x: x["img_s"])
print("| run | images | new tokens | images/s | vs HF |")
print("|---|---|---|---|---|")
for h in hf:
    print(f"| HF generate, batch {h['batch']} | {h['requests']} | {h['new_tokens']} | {h['img_s']:.3f} | |")
for bs in (64, 128):
    s = json.load(open(f"{r}/stic_describe_b{bs}.json"))
    print(f"| stic describe b{bs} | {s['images']} | {h['new_tokens']} | {s['images_per_s']:.3f} | "
          f"{s['images_per_s'] / best['img_s']:.1f}x HF batch {best['batch']} |")
EOF
