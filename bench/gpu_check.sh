#!/usr/bin/env bash
# One device call: configure against the pip torch (CUDA), build the CUDA kernels, their tests and the
# benchmark, run the standalone kernel test, the [cuda] Catch2 cases, the CUDA pytest file and the
# benchmark. Logs go to $OUT (or ./gpu_check_logs) so they come back with the call.
#   bash bench/gpu_check.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-$PWD/gpu_check_logs}"
mkdir -p "$OUT_DIR"
QUICK="${1:-}"
BUILD=build-gpu
PY=${PYTHON:-python3}
status=0
step() { echo "== $*" | tee -a "$OUT_DIR/summary.txt"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$OUT_DIR/summary.txt"
nvcc --version | tail -1 | tee -a "$OUT_DIR/summary.txt"
TORCH_PREFIX=$($PY -c "import torch; print(torch.utils.cmake_prefix_path)")
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT_DIR/summary.txt"

step "configure"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DCONVIRT_CUDA=ON -DCONVIRT_CUDA_RESOURCE_REPORT=ON -DPython3_EXECUTABLE="$(command -v $PY)" \
  -DCMAKE_CUDA_ARCHITECTURES="80;90" > "$OUT_DIR/configure.log" 2>&1 || { tail -30 "$OUT_DIR/configure.log"; exit 1; }

step "build"
targets="convirt_cuda_kernels test_cuda_standalone convirt_cuda test_cuda bench_infonce_cuda"
if grep -q "convirt_python_ext" "$BUILD/build.ninja" 2>/dev/null; then targets="$targets convirt_python_ext"; fi
cmake --build "$BUILD" --target $targets -j "$(nproc)" > "$OUT_DIR/build.log" 2>&1 || { tail -40 "$OUT_DIR/build.log"; exit 1; }
# Resource report: registers, stack, spills of every kernel (must show 0 bytes spill).
grep -E "Compiling entry|registers|spill" "$OUT_DIR/build.log" > "$OUT_DIR/ptxas.txt" || true
if grep -E "[1-9][0-9]* bytes spill" "$OUT_DIR/ptxas.txt"; then echo "SPILLS FOUND"; status=1; fi
grep -iE "warning" "$OUT_DIR/build.log" | grep -v "^ptxas info" | head -20

step "standalone kernel test"
"$BUILD/bin/test_cuda_standalone" 2>&1 | tee "$OUT_DIR/standalone.log" | tail -15 || status=1
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "catch2 [cuda]"
"$BUILD/bin/test_cuda" "[cuda]" 2>&1 | tee "$OUT_DIR/catch2.log" | tail -8
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ -d "$BUILD/python/convirt" ]; then
  step "pytest test_cuda.py"
  PYTHONPATH="$BUILD/python" $PY -m pytest -q tests/python/test_cuda.py 2>&1 | tee "$OUT_DIR/pytest.log" | tail -8
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

step "benchmark"
"$BUILD/bin/bench_infonce_cuda" $QUICK 2>&1 | tee "$OUT_DIR/bench.log"
cp "$OUT_DIR/bench.log" "$OUT_DIR/summary_bench.txt"
step "exit status $status"
exit $status
