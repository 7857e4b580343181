#!/usr/bin/env bash
# GPU machine: the paper's recipe (recipes/stic-llava16-mistral7b.yaml) end to end at 7B shape,
# scaled down: the 7B-shaped LLaVA-1.6-Mistral benchmark model (random bf16 weights), 256 crops of
# real photos (672x672), stage 1 on the 256 images, stage 2 on 256 instruction records over them,
# POPE on 64 questions with and without DaR; answers of a fixed NT tokens (EOS ignored).
# The first run is killed (-9) once generate-pref has written 64 pairs; the same command resumes.
# Resumable across calls on one machine: `bash bench/paper_run_gpu.sh OUT [BUDGET_S]` again goes on.
#   OUT/dry_run_scaled.txt   --dry-run of this run (its estimate, to set beside the measured times)
#   OUT/dry_run_paper.txt    --dry-run of the full recipe (6k images, 5k records) on this card
#   OUT/timings.json, stage logs, summaries, metrics, report.md; OUT/rates.md the per-stage rates
# Needs: a CUDA PyTorch with transformers, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/paper_out}; BUDGET=${2:-540}; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
NT=${NT:-256}
t0=$(date +%s)
BUILD_PID=""
[ -x /tmp/bg/stic ] || build_stic "$R/build.log" stic
if [ ! -d "$D/model" ] || [ "$(ls "$D/images" 2>/dev/null | wc -l)" -lt 256 ]; then
  rm -rf "$D"; timeout 300 python3 bench/bench_generate.py prepare --dir "$D" --images 256 2>&1 | grep -v -i warn | tail -3
fi
[ -n "$BUILD_PID" ] && wait_build "$R/build.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
echo "ready after $(( $(date +%s) - t0 )) s"

P2=$D/paper; mkdir -p $P2/pope
python3 - "$D/images" "$P2" <<'PY'
import json, os, sys
imgs, out = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(imgs))[:256]
qs = ["What is in the picture?", "Describe the main object.", "What colours dominate the scene?", "Where could this be?"]
ans = "The picture shows a scene with several objects arranged in the frame, lit from one side, with a plain background."
recs = [{"id": f"s{i}", "image": n, "conversations": [{"from": "human", "value": "<image>\n" + qs[i % 4]},
                                                       {"from": "gpt", "value": ans}]} for i, n in enumerate(names)]
json.dump(recs, open(f"{out}/sft.json", "w"))
sfx = "\nAnswer the question using a single word or phrase."
objs = ["person", "cat", "dog", "car", "tree", "cup", "chair", "bird"]
with open(f"{out}/pope_q.jsonl", "w") as q, open(f"{out}/pope/coco_pope_random.json", "w") as a:
    for i in range(64):
        img, o = names[i // 4], objs[i % 8]
        q.write(json.dumps({"question_id": i, "image": img, "text": f"Is there a {o} in the image?{sfx}", "category": "random"}) + "\n")
        a.write(json.dumps({"question_id": i, "image": img, "text": f"Is there a {o} in the image?", "label": "yes" if i % 2 else "no"}) + "\n")
PY

W=/tmp/paper_w
SETS=(--set model.path=$D/model --set pref.image_dir=$D/images --set pref.limit=256 --set pref.max_new_tokens=$NT
      --set pref.ignore_eos=true --set describe.data=$P2/sft.json --set describe.image_dir=$D/images
      --set describe.limit=256 --set describe.max_new_tokens=$NT --set describe.ignore_eos=true
      --set dpo.batch_size=2 --set dpo.grad_accum=4 --set dpo.save_every=8 --set sft2.save_every=4
      --set eval.dar_max_new_tokens=128
      --set benchmarks.pope.data=$P2/pope_q.jsonl --set benchmarks.pope.annotations=$P2/pope
      --set benchmarks.pope.image_dir=$D/images --set benchmarks.scienceqa=off --set benchmarks.textvqa=off
      --set benchmarks.mmbench=off --set benchmarks.llava-bench=off --set benchmarks.mm-vet=off)
P=(/tmp/bg/stic pipeline --recipe recipes/stic-llava16-mistral7b.yaml --workdir $W "${SETS[@]}")
[ -e "$R/dry_run_scaled.txt" ] || "${P[@]}" --dry-run >"$R/dry_run_scaled.txt" 2>&1
[ -e "$R/dry_run_paper.txt" ] || /tmp/bg/stic pipeline --recipe recipes/stic-llava16-mistral7b.yaml --workdir /tmp/paper_full \
  --set model.path=$D/model --dry-run >"$R/dry_run_paper.txt" 2>&1
tail -4 "$R/dry_run_scaled.txt"

if [ ! -e $W/pref/.done ] && [ ! -e $W/.killed_once ]; then  # run 1: killed -9 in the middle of generate-pref
  "${P[@]}" --quiet >"$R/run1.log" 2>&1 &
  pid=$!
  n=0
  while kill -0 $pid 2>/dev/null; do
    n=$(cat $W/pref/pairs.jsonl 2>/dev/null | wc -l); [ "$n" -ge 64 ] && break; sleep 0.5
  done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  echo "run 1 killed (-9) with $n pairs written, after $(( $(date +%s) - t0 )) s" | tee "$R/killed.txt" $W/.killed_once
fi
left=$(( BUDGET - ($(date +%s) - t0) ))
timeout -s KILL $left "${P[@]}" --quiet >>"$R/run2.log" 2>&1; rc=$?
echo "pipeline rc $rc after $(( $(date +%s) - t0 )) s"; tail -3 "$R/run2.log"
cp $W/timings.json $W/report.md "$R/" 2>/dev/null
mkdir -p "$R/logs"; cp $W/logs/*.log "$R/logs/" 2>/dev/null
cp $W/pref/pairs.jsonl.summary.json "$R/pairs_summary.json" 2>/dev/null
cp $W/describe/descriptions.jsonl.summary.json "$R/describe_summary.json" 2>/dev/null
cp $W/dpo/metrics.jsonl "$R/dpo_metrics.jsonl" 2>/dev/null
cp $W/sft2/metrics.jsonl "$R/sft2_metrics.jsonl" 2>/dev/null
if [ -e $W/sft2/adapter_config.json ]; then  # the output adapter loads and answers
  timeout 120 /tmp/bg/stic chat --model $D/model --adapter $W/sft2 --image $D/images/0000.png --prompt "Describe the image." \
    --max-new-tokens 8 --device cuda --dtype bf16 >"$R/chat.txt" 2>&1 && echo "chat --adapter sft2: ok" || tail -3 "$R/chat.txt"
fi
exit $rc
