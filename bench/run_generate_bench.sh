#!/usr/bin/env bash
# The generation benchmark, end to end, on the GPU machine (see bench/bench_generate.py):
#   bash bench/run_generate_bench.sh RESULTS_DIR
# Needs: a CUDA PyTorch with transformers, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-bench-results}; D=/tmp/stic-bench; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
build_stic "$R/build.log" stic
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
python3 bench/bench_generate.py bw | tee "$R/bw.txt"
prepare_bench_model
# the build must not share the host with HF's timings (HF at batch 1 is launch-bound); before
# commit 8ee3f27 it ran beside them (-j8), which may have cost HF's batch-1 row a little
wait_build "$R/build.log"
timeout 240 python3 bench/bench_generate.py hf --dir $D --out "$R/hf.json" --new-tokens 256 --batches ${HF_BATCHES:-1:1,16:16,64:64} 2>&1 | grep -v Warning | tail -6

run_stic() {  # NAME REQUESTS BATCH NEW_TOKENS [extra flags]
  local name=$1 req=$2 bs=$3 nt=$4; shift 4
  rm -f $D/out.jsonl
  ( peak=0; while true; do m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
      [ "$m" -gt "$peak" ] && peak=$m && echo $peak >"$R/.peak"; sleep 0.2; done ) &
  local mon=$!
  timeout 300 /tmp/bg/stic generate --model $D/model --requests $D/$req --out $D/out.jsonl --device cuda \
    --batch-size $bs --max-new-tokens $nt --ignore-eos --stats "$R/stic_$name.json" "$@" 2>&1 | grep -E "flash|tok/s gen" | tail -3
  kill $mon 2>/dev/null; wait $mon 2>/dev/null
  python3 -c "import json;p='$R/stic_$name.json';s=json.load(open(p));s['peak_gib']=int(open('$R/.peak').read())/1024;json.dump(s,open(p,'w'),indent=1)"
}
# warm-up (CUDA module loading, cuBLAS/cuDNN heuristics): the first run of a fresh machine
# measured 17.8 ms/step where the same run measures 15.2 warm (H200)
/tmp/bg/stic generate --model $D/model --requests $D/req_64.jsonl --out $D/warm.jsonl --device cuda --batch-size 64 \
  --max-new-tokens 32 --ignore-eos --no-prefix-share >/dev/null 2>&1
run_stic b64_n64_t256 req_64.jsonl 64 256 --no-prefix-share
run_stic b64_n64_t1024 req_64.jsonl 64 1024 --no-prefix-share
run_stic b128_n256_t256 req_256.jsonl 128 256 --no-prefix-share
run_stic shared4_b64_n64_t256 req_shared_64.jsonl 64 256
python3 bench/bench_generate.py report --dir $D --results "$R" --bw "$(tail -1 "$R/bw.txt")" | tee "$R/bench.md"
