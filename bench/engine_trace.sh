#!/usr/bin/env bash
# Decode-step anatomy of the engine on the 7B-shaped benchmark model (GPU machine):
#   bash bench/engine_trace.sh RESULTS_DIR
# Builds stic, runs the engine tests on the GPU (CUDA graphs on and off), then 64 requests x NT
# new tokens in variants (default; FA2 attention; no fused GEMMs; no CUDA graphs), each with a Kineto trace of 8 decode steps
# (STIC_TRACE) summarised by bench/trace_summary.py; outputs of the two runs are compared.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-trace}; D=/tmp/stic-bench; mkdir -p "$R"
. bench/common.sh
build_stic "$R/build.log" stic stic_tests
prepare_bench_model
wait_build "$R/build.log"
grep -E "stic: CUDA" "$R/build.log"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
STIC_PARITY_DEVICE=cuda STIC_PARITY_DTYPE=fp32 timeout 120 /tmp/bg/stic_tests \
  --gtest_filter='Engine*:FastPaths*:HF/Parity.Greedy*:DecodeAttention*' 2>&1 \
  | grep -E "fastpath|FAILED|PASSED|Failure|Expected|Which" | head -24
NT=${NT:-256}
run() {  # NAME ENV...
  local name=$1; shift
  env STIC_TRACE="$R/trace_$name.json" STIC_TRACE_FROM=${TRACE_FROM:-100} "$@" timeout 240 /tmp/bg/stic generate \
    --model $D/model --requests $D/req_64.jsonl --out "$R/out_$name.jsonl" --device cuda --batch-size 64 \
    --max-new-tokens $NT --ignore-eos --no-prefix-share --stats "$R/stats_$name.json" 2>&1 | grep -E "trace|flash|tok/s gen|rror" | tail -3
  python3 -c "import json;s=json.load(open('$R/stats_$name.json'));print('$name', 'ms/step %.2f' % (1e3*s['decode_seconds']/s['decode_steps']), 'prefill s %.1f (images %.1f)' % (s['prefill_seconds'], s['image_load_seconds']), 'total s %.1f' % s['seconds'])"
  python3 bench/trace_summary.py "$R/trace_$name.json" --top 30 >"$R/summary_$name.txt" 2>&1
  head -5 "$R/summary_$name.txt"
  # the timing of an untraced run (the trace slows its 8 steps down)
  [ "$name" = prefill ] && return
  env "$@" timeout 240 /tmp/bg/stic generate --model $D/model --requests $D/req_64.jsonl --out "$R/out2_$name.jsonl" \
    --device cuda --batch-size 64 --max-new-tokens $NT --ignore-eos --no-prefix-share --stats "$R/stats2_$name.json" >/dev/null 2>&1
  python3 -c "import json;s=json.load(open('$R/stats2_$name.json'));print('$name untraced', 'ms/step %.2f' % (1e3*s['decode_seconds']/s['decode_steps']), 'prefill s %.1f (images %.1f)' % (s['prefill_seconds'], s['image_load_seconds']), 'total s %.1f' % s['seconds'])"
}
for v in ${VARIANTS:-graphs flash nofuse eager prefill}; do
  case $v in
    graphs) run graphs STIC_CUDA_GRAPHS=1 ;;
    eager) run eager STIC_CUDA_GRAPHS=0 ;;
    dense) run dense STIC_DECODE_ATTN=dense ;;
    flash) run flash STIC_DECODE_ATTN=flash ;;
    nofuse) run nofuse STIC_FUSE=0 ;;
    prefill) NT=8 run prefill STIC_TRACE_WHAT=prefill STIC_TRACE_FROM=8 STIC_TRACE_STEPS=2 ;;
  esac
done
python3 - "$R" <<'EOF'
import json, sys, glob, os
r = sys.argv[1]
outs = {os.path.basename(p)[4:-6]: {j["id"]: j.get("token_ids") or j.get("text") for j in map(json.loads, open(p))}
        for p in glob.glob(f"{r}/out_*.jsonl") if "prefill" not in p}
names = sorted(outs)
for a in names:
    for b in names:
        if a < b:
            same = sum(outs[a][i] == outs[b].get(i) for i in outs[a])
            print(f"outputs {a} vs {b}: {same}/{len(outs[a])} identical")
EOF
cd "$R" && gzip -f trace_*.json && rm -f out2_*.jsonl
