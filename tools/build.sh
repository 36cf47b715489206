#!/usr/bin/env bash
# Configures and builds convirt into ./build (or $CONVIRT_BUILD_DIR) with Ninja, using every core.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CONVIRT_BUILD_DIR:-$root/build}
jobs=${CONVIRT_BUILD_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CONVIRT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
