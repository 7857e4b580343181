#!/usr/bin/env bash
# Decode-step profile of the engine on the 7B-shaped benchmark model (GPU machine):
#   bash bench/profile_decode.sh RESULTS_DIR
# Variants: STIC_PROFILE=1 (device-synchronised part timings), STIC_PROFILE=2 (host launch time
# of the forward, no extra syncs), and the alternative KV-write / attention paths.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-prof}; D=/tmp/stic-bench; mkdir -p "$R"
. bench/common.sh
build_stic "$R/build.log" stic stic_tests
prepare_bench_model
wait_build "$R/build.log"
# correctness on the GPU first: the engine vs HF's greedy tokens, every fast path (CUDA graphs on
# and off included) vs the reference configuration
STIC_PARITY_DEVICE=cuda STIC_PARITY_DTYPE=fp32 /tmp/bg/stic_tests \
  --gtest_filter='Engine*:FastPaths*:DecodeAttention*:HF/Parity.Greedy*' 2>&1 \
  | grep -E "fastpath|FAILED|PASSED|Failure|Expected|Which" | head -24
NT=${NT:-128}
run() {  # NAME ENV...
  local name=$1; shift
  rm -f $D/p.jsonl
  env "$@" timeout 200 /tmp/bg/stic generate --model $D/model --requests $D/req_64.jsonl --out $D/p.jsonl --device cuda \
    --batch-size 64 --max-new-tokens $NT --ignore-eos --no-prefix-share --stats "$R/prof_$name.json" 2>&1 | grep -E "profile|flash|tok/s gen" | tail -3
  python3 -c "import json;s=json.load(open('$R/prof_$name.json'));print('$name', 'ms/step %.1f' % (1e3*s['decode_seconds']/s['decode_steps']), 'prefill s %.1f' % s['prefill_seconds'])"
}
for v in ${VARIANTS:-sync host default index_put manual}; do
  case $v in
    sync) run sync STIC_PROFILE=1 ;;
    host) run host STIC_PROFILE=2 ;;
    default) run default STIC_PROFILE=0 ;;
    index_put) run index_put STIC_KV_WRITE=index_put ;;
    manual) run manual STIC_DECODE_ATTN=manual ;;
    nographs) run nographs STIC_CUDA_GRAPHS=0 ;;
    flash_nographs) run flash_nographs STIC_CUDA_GRAPHS=0 ;;
    sdpa) run sdpa STIC_DECODE_ATTN=sdpa ;;
  esac
done
