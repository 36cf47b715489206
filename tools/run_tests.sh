#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the C++ suites (CTest: Catch2 cases, the package
# test against the installed library, the format check, the CUDA standalone test), the Python suite, and
# the hardening pass (a clang build with ASan + UBSan running the parser tests, and bounded fuzzing).
# CONVIRT_HARDENING_TESTS=all runs every C++ suite under the sanitizers (about 10 more minutes; see
# docs/fuzzing.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CONVIRT_BUILD_DIR:-$root/build}
"$root/tools/install_deps.sh"
"$root/tools/check_blas.sh"
"$root/tools/build.sh"

# Idle OpenMP threads spin by default, stealing the cores from the other test running beside them.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
status=0
echo "== C++ tests (ctest)"
(cd "$build" && ctest --output-on-failure -j "${CONVIRT_TEST_JOBS:-2}") || status=1

echo "== Python tests (pytest)"
python_exe=$(grep -E '^CONVIRT_PYTHON_EXECUTABLE_RESOLVED:' "$build/CMakeCache.txt" | cut -d= -f2 || true)
python_exe=${python_exe:-/usr/bin/python3}
PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$python_exe" -m pytest -q "$root/tests/python" || status=1

echo "== hardening (sanitizer tests, fuzz replay, bounded fuzzing)"
"$root/tools/run_hardening.sh" || status=1

if [[ $status -ne 0 ]]; then
  echo "run_tests: FAILED" >&2
fi
exit $status
