#!/usr/bin/env bash
# GPU machine: the world-tiny recipe at several settings and world seeds side by side on one GPU
# (fp32, as on the CPU). A single run says little: the shipped recipe on world seeds 0-7 ends
# between 29% and 72% base precision (bench/RESULTS.md, "world-tiny over world seeds"), so
# compare recipes over several seeds. All variants run concurrently; each also scores its pretrained
# (caption-only) model. One summary line per variant; results packed into OUT/variants.tgz.
#   bash bench/world_tiny_variants_gpu.sh OUT SPEC...
#   SPEC = PRESET:P:B[:PLR[:BLR[:SEED[:TWEAKS]]]]   world preset, pretrain steps, base steps,
#          pretrain lr, base lr (default: the recipe's), world seed (default 0; it seeds the init too),
#          TWEAKS: other recipe keys, SECTION.KEY=VALUE joined by ',' (e.g. base.freeze_projector=true)
#   e.g.  bash bench/world_tiny_variants_gpu.sh /tmp/v world-tiny:800:300::: world-tiny:800:300:::1
#         bash bench/world_tiny_variants_gpu.sh /tmp/v world-tiny:800:300:::0:vision.max_steps=3000
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/wtv}; shift; mkdir -p "$OUT"
. bench/common.sh; use_deps_tools
JOBS=16 build_stic "$OUT/build.log" stic; wait_build "$OUT/build.log"

parse() {  # SPEC -> preset P B PLR BLR SEED TWEAKS name
  IFS=: read -r preset P B PLR BLR SEED TWEAKS <<<"$1"; SEED=${SEED:-0}
  name="$preset-p$P-b$B-plr${PLR:-recipe}-blr${BLR:-recipe}-s$SEED${TWEAKS:+-$(tr ',=' '+_' <<<"$TWEAKS")}"
}
tweak() {  # TWEAKS < recipe > recipe: set KEY: VALUE in each named top-level SECTION (added if absent)
  awk -v T="$1" '
    BEGIN { n = split(T, tw, ","); for (i = 1; i <= n; i++) { split(tw[i], kv, "="); split(kv[1], sk, ".")
                                                           sec[i] = sk[1]; key[i] = sk[2]; val[i] = kv[2] } }
    { line[NR] = $0 }
    END { cur = ""
      for (l = 1; l <= NR; l++) {
        if (line[l] ~ /^[a-z_]+:/) { cur = line[l]; sub(/:.*/, "", cur) }
        else for (i = 1; i <= n; i++)
          if (cur == sec[i] && line[l] ~ "^  " key[i] ":") { line[l] = "  " key[i] ": " val[i]; set[i] = 1 }
        out[l] = line[l]
      }
      cur = ""
      for (l = 1; l <= NR; l++) {
        print out[l]
        if (out[l] ~ /^[a-z_]+:/) { cur = out[l]; sub(/:.*/, "", cur)
          for (i = 1; i <= n; i++) if (cur == sec[i] && !set[i]) print "  " key[i] ": " val[i] }
      } }'
}
run_one() {  # SPEC
  local preset P B PLR BLR SEED TWEAKS name R WD t0
  parse "$1"; R=/tmp/wtv_$name.yaml; WD=/tmp/wtv/$name
  world_tiny_gpu_recipe "$SEED" "$preset" |
    awk -v P="$P" -v B="$B" -v PLR="$PLR" -v BLR="$BLR" '/^pretrain:/{s="p"} /^base:/{s="b"} /^instruct:/{s=""}
      /max_steps:/{ if(s=="p") sub(/[0-9]+/,P); else if(s=="b") sub(/[0-9]+/,B) }
      /^  lr:/{ if(s=="p" && PLR!="") sub(/[0-9.e-]+$/,PLR); else if(s=="b" && BLR!="") sub(/[0-9.e-]+$/,BLR) } {print}' |
    tweak "$TWEAKS" > "$R"
  t0=$(date +%s)
  timeout "${PIPE_TIMEOUT:-480}" /tmp/bg/stic pipeline --recipe "$R" --workdir "$WD" --quiet > "$OUT/$name.log" 2>&1
  echo "pipeline rc=$? in $(( $(date +%s) - t0 )) s" >> "$OUT/$name.log"
  timeout 60 /tmp/bg/stic eval --model "$WD/pretrain" --benchmark world --data "$WD/world" --out "$WD/eval_pretrain" \
    --batch-size 100 --max-new-tokens 160 --device cuda --dtype fp32 --quiet >> "$OUT/$name.log" 2>&1
}
for spec in "$@"; do run_one "$spec" & done
wait
echo "variant | pretrain image gain | captions only: precision recall CHAIR_i CHAIR_s colour size position | after base: the same | pipeline"
for spec in "$@"; do
  parse "$spec"; WD=/tmp/wtv/$name
  g=$(grep -h eval_image_gain "$WD/pretrain/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*"eval_image_gain":\([0-9.e-]*\).*/\1/')
  echo "$name | $g | $(sed -n 5p "$WD/eval_pretrain/summary.md" 2>/dev/null) | $(sed -n 5p "$WD/eval/summary.md" 2>/dev/null) | $(grep "pipeline rc" "$OUT/$name.log")"
done
(cd /tmp/wtv && tar czf "$OUT/variants.tgz" */timings.json */eval/summary.md */eval/per_item.jsonl */eval_pretrain/summary.md \
   */eval_pretrain/per_item.jsonl */pretrain/metrics.jsonl */base/metrics.jsonl 2>/dev/null)
