#!/usr/bin/env bash
# The whole test suite: installs, builds, runs ctest (unit, HF parity, CLI end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
STIC_WERROR=ON bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
cd build && ctest --output-on-failure
