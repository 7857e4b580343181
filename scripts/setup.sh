#!/usr/bin/env bash
# Installs what stic needs on Debian 12 (as root, or with sudo) and builds it into build/.
# Idempotent: packages already present are not reinstalled; the build is incremental (ccache).
# Warnings are errors (Debian 12's g++, which CI uses); STIC_WERROR=OFF for another compiler.
# scripts/demo.sh and scripts/test.sh both build through here: one build serves both.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(g++ cmake make ccache pkg-config libtorch-dev libopenblas0-openmp libturbojpeg0-dev libstb-dev
      nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libgtest-dev python3 sentencepiece libgloo-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

JOBS=${STIC_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTIC_WERROR=${STIC_WERROR:-ON} >/dev/null
echo "[setup] building with $JOBS jobs (first build: ~6 minutes on 2 cores)"
start=$(date +%s)
cmake --build build -j "$JOBS" 2>&1 | grep -E "error|warning|Built target" || true
test -x build/stic || { echo "[setup] build failed" >&2; cmake --build build -j1 2>&1 | tail -30; exit 1; }
echo "[setup] build done in $(( $(date +%s) - start ))s"
