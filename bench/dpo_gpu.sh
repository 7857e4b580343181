#!/usr/bin/env bash
# STIC stage-1 training (train-dpo) against the HF + PEFT peer on the GPU machine, same data,
# same model, same run (bench/bench_dpo.py says what each side computes):
#   bash bench/dpo_gpu.sh RESULTS_DIR [STEPS]
# The 7B-shaped benchmark model (random bf16 weights), pad mode (576 image tokens, as the
# released training), ~40-token prompt + ~400-token answers per side, LoRA r 128 / alpha 256 on
# every decoder linear, bf16 weights with fp32 adapters; 1, 4 and 8 pairs per step (HF: 1 and 4,
# as written and under torch.autocast as HF Trainer --bf16 runs it).
# Needs: a CUDA PyTorch with transformers + peft, skimage; .deps/root from tools/fetch-deps.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${1:-/tmp/stic-dpo}; STEPS=${2:-8}; mkdir -p "$R"
export PYTHONUNBUFFERED=1
. bench/common.sh
build_stic "$R/build.log" stic
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
prepare_bench_model
python3 bench/bench_dpo.py data --dir $D
for P in ${HF_PAIRS:-1 4}; do
  timeout 240 python3 bench/bench_dpo.py hf --dir $D --pairs $P --steps $STEPS --out "$R/dpo_hf_p$P.json" 2>&1 \
    | grep -v -i warn | tail -1
  timeout 240 python3 bench/bench_dpo.py hf --autocast --dir $D --pairs $P --steps $STEPS --out "$R/dpo_hfac_p$P.json" 2>&1 \
    | grep -v -i warn | tail -1
done
wait_build "$R/build.log"
# stic: the adapter GEMMs in bf16 from fp32 masters (default), and with --lora-compute fp32 (as the plain peer)
for V in ${STIC_VARIANTS:-1:input 4:input 8:input 4:fp32}; do
  P=${V%%:*}; LC=${V##*:}
  rm -rf /tmp/dpo_run; rm -f "$R/.peak"
  ( peak=0; while true; do m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
      [ "$m" -gt "$peak" ] && peak=$m && echo $peak >"$R/.peak"; sleep 0.2; done ) &
  mon=$!
  timeout 240 /tmp/bg/stic train-dpo --model $D/model --data $D/dpo_pairs.jsonl --output-dir /tmp/dpo_run \
    --device cuda --dtype bf16 --image-mode pad --template vicuna_v1 --lora-r 128 --lora-alpha 256 --batch-size $P \
    --max-steps $STEPS --lr 1e-7 --peak-tflops 989 --log-every 1 --max-length 2048 --no-progress --lora-compute $LC \
    >"$R/stic_p${P}_$LC.log" 2>&1
  echo "stic P=$P $LC rc=$?"; tail -1 "$R/stic_p${P}_$LC.log"
  kill $mon 2>/dev/null; wait $mon 2>/dev/null
  cp /tmp/dpo_run/metrics.jsonl "$R/stic_metrics_p${P}_$LC.jsonl" 2>/dev/null
  python3 bench/bench_dpo.py stic-summary --metrics /tmp/dpo_run/metrics.jsonl --pairs $P --peak "$R/.peak" \
    --impl "stic$([ $LC = fp32 ] && echo ' fp32 LoRA')" --out "$R/dpo_stic_p${P}_$LC.json" | tail -1
done
python3 bench/bench_dpo.py report --results "$R" | tee "$R/bench_dpo.md"
tar czf "$R.tgz" -C "$R" . && echo "all results: $R.tgz"
