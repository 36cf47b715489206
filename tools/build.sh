#!/usr/bin/env bash
# Configures and builds convirt into ./build (or $CONVIRT_BUILD_DIR) with Ninja, using every core.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CONVIRT_BUILD_DIR:-$root/build}
jobs=${CONVIRT_BUILD_JOBS:-$(nproc)}
launcher=()
# A compiler cache, where the machine has one, makes rebuilds of a second checkout (or of CI's fresh clone)
# take seconds; the build is the same without it.
if command -v ccache >/dev/null && [[ ${CONVIRT_NO_CCACHE:-0} != 1 ]]; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${CONVIRT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
