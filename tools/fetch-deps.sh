#!/usr/bin/env bash
# Downloads the Debian packages the build needs beyond a CUDA PyTorch install (header-only
# libs, TurboJPEG, GoogleTest) and unpacks them into .deps/root, which CMake searches first
# (STIC_DEPS_DIR). Run here (it needs Debian's apt); the device run carries .deps.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs .deps/root
cd .deps/debs
apt-get download nlohmann-json3-dev libcli11-dev libstb-dev libstb0 libturbojpeg0-dev libturbojpeg0 \
  libgtest-dev googletest libyaml-cpp-dev libyaml-cpp0.7 sentencepiece libsentencepiece0 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
for f in *.deb; do dpkg-deb -x "$f" ../root; done
# (spm_train, for `stic world` on the GPU machine: PATH=.deps/root/usr/bin LD_LIBRARY_PATH=.deps/root/usr/lib/x86_64-linux-gnu)
# libturbojpeg.so is a link to libturbojpeg.so.0.x: keep it resolvable inside the folder
ls ../root/usr/lib/x86_64-linux-gnu/ | head -20
du -sh ../root
