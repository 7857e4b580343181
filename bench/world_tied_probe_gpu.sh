#!/usr/bin/env bash
# GPU machine, experiment (docs/world.md, "Session 6"): the world-tiny recipe with the decoder's
# input and output embeddings tied (config tie_word_embeddings: true, set in the world's model
# before training). Idea: generating "red" from an image position then pulls that position
# towards the input embedding of "red", which a question naming "red" could match.
#   bash bench/world_tied_probe_gpu.sh OUT SEED...
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wtp}; shift; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"
one() {  # SEED
  local s=$1 WD=/tmp/wtp/s$1 R=/tmp/wtp_s$1.yaml
  world_tiny_gpu_recipe "$s" > "$R"
  /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --until world --quiet > "$OUT/s$s.log" 2>&1
  python3 - "$WD/world/model/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["tie_word_embeddings"] = True; c["text_config"]["tie_word_embeddings"] = True
json.dump(c, open(p, "w"), indent=2)
PY
  /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --quiet >> "$OUT/s$s.log" 2>&1
  /tmp/bg/stic eval --model "$WD/pretrain" --benchmark world --data "$WD/world" --out "$WD/eval_pretrain" \
    --batch-size 100 --max-new-tokens 160 --device cuda --dtype fp32 --quiet >> "$OUT/s$s.log" 2>&1
}
for s in "$@"; do one "$s" & done
wait
for s in "$@"; do
  for e in eval_pretrain eval; do
    echo "seed $s tied $e: $(world_eval_line /tmp/wtp/s$s/$e/summary.md)"
  done
done
(cd /tmp/wtp && tar czf "$OUT/wtp.tgz" */eval/summary.md */eval_pretrain/summary.md */eval/per_item.jsonl */base/metrics.jsonl */pretrain/metrics.jsonl 2>/dev/null)
