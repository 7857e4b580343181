#!/usr/bin/env bash
# GPU machine (transformers 5.x; the check itself runs on the CPU in fp32): `stic export --layout`
# round trips of the parity checkpoints, loaded and run by HF (tools/check_export_layout.py).
#   OUT=dir bash bench/export_layout_gpu.sh      (result: $OUT/layout_result.json, $OUT/layout.log)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/layout_out}; mkdir -p "$OUT"
. bench/common.sh
[ -x /tmp/bg/stic ] || { build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"; }
E=/tmp/layout_check; rm -rf $E; mkdir -p $E
for n in llava_llama next_mistral; do
  /tmp/bg/stic export --model tests/fixtures/parity/$n --out $E/${n}_orig --layout original --dtype fp32 2>&1 | tail -1
  /tmp/bg/stic export --model $E/${n}_orig --out $E/${n}_back --layout llava-hf --dtype fp32 2>&1 | tail -1
done
/tmp/bg/stic export --model tests/fixtures/parity/orig_mistral --out $E/orig_mistral_hf --layout llava-hf --dtype fp32 2>&1 | tail -1
python3 tools/check_export_layout.py --exported $E --out $OUT/layout_result.json > $OUT/layout.log 2>&1
rc=$?; echo "layout check rc $rc"; tail -40 $OUT/layout.log
exit $rc
