#!/usr/bin/env bash
# Installs, from Debian's packages, whatever convirt needs that this machine lacks. Idempotent: a machine
# that has everything is left untouched and no package index is fetched. Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  clang-14 libclang-rt-14-dev llvm-14   # sanitizer + libFuzzer build of the hardening pass
  libtorch-dev python3-torch
  libopenblas0-pthread            # without it LibTorch falls back to the reference BLAS (~30x slower)
  libeigen3-dev libfmt-dev catch2 nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
  pybind11-dev python3-pybind11 python3-numpy python3-pytest python3-venv python3-pip
  python3-setuptools python3-wheel python3-pil
  libturbojpeg0-dev libjpeg-dev libpng-dev libdcmtk-dev libutf8proc-dev libgloo-dev
  python3-torchvision python3-sklearn   # independent references in the tests
)
if [[ -n "${CONVIRT_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"${CONVIRT_EXTRA_PACKAGES}"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install_deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
