#!/usr/bin/env bash
# The whole test suite: installs, builds, runs ctest (unit, HF parity, CLI end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh   # the same build as scripts/demo.sh (warnings are errors in both)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
cd build && ctest --output-on-failure
