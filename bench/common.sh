# Sourced by the GPU bench scripts (run from the repository root): the build of stic against the
# machine's CUDA PyTorch into /tmp/bg, and the 7B-shaped benchmark model in $D.
D=${D:-/tmp/stic-bench}

# build_stic LOG TARGET...: configure + build in the background; `wait_build LOG` joins it.
build_stic() {
  local log=$1; shift
  local tp
  tp=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  ( cmake -S . -B /tmp/bg -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tp" \
      -DSTIC_DEPS_DIR="$PWD/.deps/root" && cmake --build /tmp/bg -j"${JOBS:-14}" --target "$@" ) >"$log" 2>&1 &
  BUILD_PID=$!
}
wait_build() { wait "$BUILD_PID" || { tail -30 "$1"; exit 1; }; }

# spm_train and its libraries (the carried .deps/root): `stic world` trains the world's tokenizer
use_deps_tools() {
  export PATH=$PWD/.deps/root/usr/bin:$PATH LD_LIBRARY_PATH=$PWD/.deps/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
}

# the benchmark model, tokenizer, images and request files (once per machine)
prepare_bench_model() {
  [ -d "$D/model" ] || timeout 200 python3 bench/bench_generate.py prepare --dir "$D" 2>&1 | tail -3
}

# recipes/world-tiny.yaml for the GPU (cuda, fp32 as on the CPU) with world seed SEED (it seeds the
# init too) and world preset PRESET (default world-tiny), on stdout
world_tiny_gpu_recipe() {
  sed -e "s/^device: cpu/device: cuda/; s/^dtype: auto/dtype: fp32/; s/^  preset: world-tiny/  preset: ${2:-world-tiny}/; s/^  seed: 0/  seed: $1/" \
    recipes/world-tiny.yaml
}
