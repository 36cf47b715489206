#!/usr/bin/env bash
# Fails when LibTorch would run its matrix products on the reference BLAS (Debian's default without
# libopenblas0-pthread), which makes every convirt job ~30x slower without any error.
set -euo pipefail
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
if [[ -n "$blas" && "$blas" != *openblas* ]]; then
  echo "check_blas: libblas.so.3 points to $blas, not OpenBLAS; install libopenblas0-pthread" >&2
  exit 1
fi
echo "check_blas: ${blas:-system BLAS (no Debian alternative set)}"
