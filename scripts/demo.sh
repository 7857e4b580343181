#!/usr/bin/env bash
# The main job: the embedded default. Installs and builds (scripts/setup.sh), then runs the
# world-tiny recipe: builds a synthetic world with exact ground truth, trains a tiny LLaVA on it
# from scratch on the CPU, evaluates what it sees and gets wrong, runs STIC's stage 1 on it
# (self-built preference pairs, DPO) and evaluates again, and writes a report.
# Resumable: re-running after an interruption finishes the unfinished stages only.
#   STIC_DEMO_WORKDIR  work folder (default out/world-tiny)
#   STIC_THREADS       torch threads per stage (default: the recipe's 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
W=${STIC_DEMO_WORKDIR:-out/world-tiny}
ARGS=(--recipe recipes/world-tiny.yaml --workdir "$W")
[ -n "${STIC_THREADS:-}" ] && ARGS+=(--threads "$STIC_THREADS")
echo "[demo] stic pipeline ${ARGS[*]}   (about 15 minutes on 2 cores)"
start=$(date +%s)
./build/stic pipeline "${ARGS[@]}" >/dev/null
echo "[demo] done in $(( $(date +%s) - start ))s"
echo
cat "$W/eval/summary.md"
echo
# STIC stage 1: the base model against the base model + its self-trained adapter
sed -n '/^| model | precision/,/^$/p' "$W/report.md"
echo
echo "[demo] report: $W/report.md (open $W/report.html in a browser for the images and the loss plot)"
