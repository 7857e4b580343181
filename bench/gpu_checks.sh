#!/usr/bin/env bash
# GPU machine, one call: build stic against the CUDA PyTorch, convert the parity checkpoints between
# layouts and check them with HF transformers (tools/check_export_layout.py), run the whole ctest
# suite (GPU tests included) and regenerate the unpad-probe fixture.  OUT=dir bash bench/gpu_checks.sh
set -x
. bench/common.sh; use_deps_tools  # spm_train: the world-building tests
mkdir -p $OUT/fx
python3 tools/make_bite_fixtures.py --out $OUT/fx --only make_unpad > $OUT/fx.log 2>&1 &
build_stic $OUT/build.log stic stic_tests stic_base_tests; wait_build $OUT/build.log
OUT=$OUT bash bench/export_layout_gpu.sh
(cd /tmp/bg && timeout 420 ctest -j6 --output-on-failure > $OUT/ctest.log 2>&1); grep -E "Test +#|tests passed" $OUT/ctest.log
grep -E "^\[ (parity|fastpath|step|peft) \]|FAILED" $OUT/ctest.log | head -40
wait; tail -3 $OUT/fx.log; cd $OUT/fx && tar czf $OUT/fx.tgz . 
