#!/usr/bin/env bash
# The main job: installs what is missing, builds, then generates the synthetic dataset, pretrains ConVIRT
# and the Contrastive-Binary baseline, and evaluates them against random initialisation (Tables 1 and 2,
# Figure 3). Extra arguments go to `convirt reproduce` (see `build/bin/convirt reproduce --help`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CONVIRT_BUILD_DIR:-$root/build}
"$root/tools/install_deps.sh"
"$root/tools/check_blas.sh"
"$root/tools/build.sh"
exec "$build/bin/convirt" reproduce --out "${CONVIRT_RUN_DIR:-$root/runs/demo}" "$@"
