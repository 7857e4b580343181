#!/usr/bin/env bash
# The stage-1 data benchmark on the GPU machine (bench/bench_pref.py), plus the fast-path
# harness on the GPU:
#   bash bench/pref_gpu.sh RESULTS_DIR [build|stic|hf|all]
# build: stic + tests against the CUDA PyTorch, the 7B-shaped model, the GPU fast-path tests;
# stic: generate-pref on 64 images (400 tokens per side, EOS ignored) at 64 and 128 slots;
# hf: HF generate replaying the same pairs at batch 1, 16 and 32 images; then the report.
# Needs: a CUDA PyTorch with transformers, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-pref}; WHAT=${2:-all}; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
NT=${NT:-400}
if [ "$WHAT" = build ] || [ "$WHAT" = all ]; then
  build_stic "$R/build.log" stic stic_tests
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
  prepare_bench_model
  wait_build "$R/build.log"
  STIC_PARITY_DEVICE=cuda STIC_PARITY_DTYPE=fp32 timeout 200 /tmp/bg/stic_tests \
    --gtest_filter='FastPaths*:DecodeAttention*:EngineTransforms*:Engine*:LoadedModel*' 2>&1 \
    | grep -E "fastpath|OK|FAILED|PASSED|Failure|Expected|Which" | tee "$R/fastpaths_gpu.txt" | tail -30
fi
if [ "$WHAT" = stic ] || [ "$WHAT" = all ]; then
  python3 bench/bench_generate.py bw | tail -1 >"$R/bw.txt"
  python3 bench/bench_pref.py gemm | tail -1 >"$R/gemm.txt"
  /tmp/bg/stic generate-pref --model $D/model --image-dir $D/images --out /tmp/warm/pairs.jsonl --device cuda \
    --max-new-tokens 32 --ignore-eos --batch-size 64 --quiet >/dev/null 2>&1  # warm-up
  for bs in 64 128; do
    rm -rf "/tmp/pref_b$bs"
    ( peak=0; while true; do m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        [ "$m" -gt "$peak" ] && peak=$m && echo $peak >"$R/.peak"; sleep 0.2; done ) &
    mon=$!
    timeout 300 /tmp/bg/stic generate-pref --model $D/model --image-dir $D/images --out "/tmp/pref_b$bs/pairs.jsonl" \
      --device cuda --max-new-tokens $NT --ignore-eos --batch-size $bs --stats "$R/stic_pref_b$bs.json" --quiet 2>&1 | tail -1
    kill $mon 2>/dev/null; wait $mon 2>/dev/null
    python3 -c "import json;p='$R/stic_pref_b$bs.json';s=json.load(open(p));s['peak_gib']=int(open('$R/.peak').read())/1024;json.dump(s,open(p,'w'),indent=1)"
  done
  cp /tmp/pref_b64/pairs.jsonl.summary.json "$R/pairs_summary.json"
fi
if [ "$WHAT" = hf ] || [ "$WHAT" = all ]; then
  timeout 500 python3 bench/bench_pref.py hf --dir $D --pairs /tmp/pref_b64/pairs.jsonl --out "$R/hf_pref.json" \
    --new-tokens $NT --batches ${HF_BATCHES:-1:2,16:16,32:32} 2>&1 | grep -v Warning | tail -4
  python3 bench/bench_pref.py report --dir $D --results "$R" --bw "$(cat "$R/bw.txt")" --gemm "$(cat "$R/gemm.txt")" \
    | tee "$R/bench_pref.md"
fi
