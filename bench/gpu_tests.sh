#!/usr/bin/env bash
# GPU machine: the C++ suite's GPU half (tests/e2e/gpu_tests.sh through ctest: HF parity in fp32
# and bf16, the engine and every fast path on CUDA) against the machine's CUDA PyTorch.
#   bash bench/gpu_tests.sh OUT
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/gpu_tests}; mkdir -p "$OUT"
. bench/common.sh
build_stic "$OUT/build.log" stic_tests; wait_build "$OUT/build.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
(cd /tmp/bg && ctest -R '^gpu_tests_' --output-on-failure) 2>&1 | tee "$OUT/ctest.log" | grep -E "^\[ (parity|fastpath|step|peft) \]|FAILED|tests passed|Passed|Skipped|\*\*\*" | head -80
