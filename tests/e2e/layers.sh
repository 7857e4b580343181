#!/usr/bin/env bash
# The import graph of src/stic (shared/design.md, "Layers"): a layer includes only itself and the
# layers below it — util -> io/image/text -> model/world/score -> infer/train -> method/eval -> apps.
# infer and train are siblings (train never includes infer), so are model, world and score (the
# benchmark files and their scoring rules, no model); eval never
# includes method (method may run eval stages). Fails naming each include that points up or sideways.
set -uo pipefail
cd "$(dirname "$0")/../.."
declare -A allowed=(
  [util]="util"
  [io]="util io"
  [image]="util image"
  [text]="util text"
  [model]="util io image text model"
  [world]="util io image text world"
  [score]="util io image text score"
  [infer]="util io image text model world infer"
  [train]="util io image text model world train"
  [eval]="util io image text model world score infer train eval"
  [method]="util io image text model world score infer train eval method"
)
bad=0
for layer in "${!allowed[@]}"; do
  [ -d "src/stic/$layer" ] || { echo "layers: src/stic/$layer is missing"; bad=1; continue; }
  while IFS=: read -r file line inc; do
    dep=$(sed -E 's|.*"stic/([a-z_]+)/.*|\1|' <<<"$inc")
    case " ${allowed[$layer]} " in
      *" $dep "*) ;;
      *) echo "layers: $file:$line: $layer includes $dep ($inc)"; bad=1 ;;
    esac
  done < <(grep -nE '^#include "stic/' -r "src/stic/$layer" | sed -E 's/^([^:]+):([0-9]+):/\1:\2:/')
done
for d in src/stic/*/; do
  l=$(basename "$d")
  [ -n "${allowed[$l]:-}" ] || { echo "layers: src/stic/$l is not a known layer (add it to tests/e2e/layers.sh)"; bad=1; }
done
# apps are thin: a verb file parses flags into an options struct and calls the library
big=$(wc -l apps/stic/*.cpp | awk '$2 != "total" && $1 > 160 {print $2 " (" $1 " lines)"}')
[ -z "$big" ] || { echo "layers: verb files over 160 lines: $big"; bad=1; }
if [ "$bad" -eq 0 ]; then echo "layers: the import graph holds (${#allowed[@]} layers)"; echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit "$bad"
