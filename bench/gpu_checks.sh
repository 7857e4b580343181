#!/usr/bin/env bash
# GPU machine, one call: build stic against the CUDA PyTorch, convert the parity checkpoints between
# layouts and check them with HF transformers (tools/check_export_layout.py), run the whole ctest
# suite (GPU tests included) and regenerate the unpad-probe fixture.  OUT=dir bash bench/gpu_checks.sh
set -x
. bench/common.sh
mkdir -p $OUT/fx
python3 tools/make_bite_fixtures.py --out $OUT/fx --only make_unpad > $OUT/fx.log 2>&1 &
build_stic $OUT/build.log stic stic_tests stic_base_tests; wait_build $OUT/build.log
E=/tmp/layout_check; mkdir -p $E
for n in llava_llama next_mistral; do
  /tmp/bg/stic export --model tests/fixtures/parity/$n --out $E/${n}_orig --layout original --dtype fp32 2>&1 | tail -1
  /tmp/bg/stic export --model $E/${n}_orig --out $E/${n}_back --layout llava-hf --dtype fp32 2>&1 | tail -1
done
/tmp/bg/stic export --model tests/fixtures/parity/orig_mistral --out $E/orig_mistral_hf --layout llava-hf --dtype fp32 2>&1 | tail -1
python3 tools/check_export_layout.py --exported $E --out $OUT/layout_result.json > $OUT/layout.log 2>&1; echo layout rc $?; tail -15 $OUT/layout.log
(cd /tmp/bg && timeout 400 ctest -j6 --output-on-failure > $OUT/ctest.log 2>&1); grep -E "Test +#|tests passed" $OUT/ctest.log
grep -E "^\[ (parity|fastpath|step|peft) \]|FAILED" $OUT/ctest.log | head -40
wait; tail -3 $OUT/fx.log; cd $OUT/fx && tar czf $OUT/fx.tgz . 
