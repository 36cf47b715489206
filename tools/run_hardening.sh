#!/usr/bin/env bash
# The hardening pass: builds convirt with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# on) and the libFuzzer targets in one clang build folder, then
#   1. runs the parser-heavy C++ test suites under the sanitizers,
#   2. replays every seed corpus and regression input of every fuzz target,
#   3. fuzzes each target for a bounded time,
# and fails on any sanitizer report, leak, crash, timeout or test failure. See docs/fuzzing.md.
#
# Environment:
#   CONVIRT_HARDENING_BUILD_DIR   build folder (default: <repo>/build-hardening)
#   CONVIRT_FUZZ_SECONDS          seconds of fuzzing per target (default 15; 0 skips step 3)
#   CONVIRT_FUZZ_SEED             libFuzzer's seed (default 1, so the test command explores the same
#                                 inputs on every run; 0 draws a new seed each run, for longer hunts)
#   CONVIRT_HARDENING_TESTS       test executables to run (default below), or "all": every C++ suite
#                                 (train, cli, eval, pipeline, dist and fault injection included)
#   CONVIRT_HARDENING_JOBS        build jobs (default: nproc)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CONVIRT_HARDENING_BUILD_DIR:-$root/build-hardening}
fuzz_seconds=${CONVIRT_FUZZ_SECONDS:-15}
fuzz_seed=${CONVIRT_FUZZ_SEED:-1}
all_tests="test_core test_text test_data test_image test_models test_loss test_eval test_dist test_train
  test_sync_batch_norm test_cli test_run_integrity test_fault_injection test_rank_loss test_cuda_emulated"
tests=${CONVIRT_HARDENING_TESTS:-"test_core test_text test_data test_image test_models test_cuda_emulated"}
[[ $tests == all ]] && tests=$all_tests
jobs=${CONVIRT_HARDENING_JOBS:-$(nproc)}
cxx=${CONVIRT_HARDENING_CXX:-$(command -v clang++-14 || command -v clang++)}
start=$(date +%s)

launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

echo "== configure $build ($cxx)"
mkdir -p "$build"
# -O1 keeps the sanitized build fast to compile and still fast enough to fuzz; line tables give
# symbolized stacks.
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCONVIRT_SANITIZE="address;undefined" -DCONVIRT_FUZZ=ON \
  -DCONVIRT_CUDA=OFF -DCONVIRT_BUILD_PYTHON=OFF \
  -DCONVIRT_BUILD_EXAMPLES=OFF -DCONVIRT_BUILD_BENCHMARKS=OFF > "$build/configure.log" ||
  { cat "$build/configure.log"; exit 1; }

echo "== build ($jobs jobs)"
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $tests convirt_fuzzers

export OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Programs that reach LibTorch's zip reader need full allocation stacks for tools/lsan.supp to match
# its known leak (LibTorch has no frame pointers, so the fast unwinder stops inside it).
asan_for() {
  case "$1" in
    fuzz_torch_file | fuzz_safetensors) echo "$ASAN_OPTIONS:fast_unwind_on_malloc=0" ;;
    *) echo "$ASAN_OPTIONS" ;;
  esac
}

# The CUDA kernels under the emulator: every case but n > 2048 (the sanitizers slow the fibers
# about tenfold; docs/cuda_kernel.md, "Emulator").
args_for() {
  case "$1" in
    test_cuda_emulated) echo small ;;
  esac
}

status=0
echo "== C++ tests under ASan + UBSan + LSan: $tests"
for t in $tests; do
  t0=$(date +%s)
  # shellcheck disable=SC2046
  if ASAN_OPTIONS=$(asan_for "$t") "$build/bin/$t" $(args_for "$t") > "$build/$t.log" 2>&1; then
    echo "  $t: passed ($(( $(date +%s) - t0 )) s)"
  else
    echo "  $t: FAILED (log: $build/$t.log)"; tail -40 "$build/$t.log"; status=1
  fi
done

fuzzers=$(find "$root/fuzz" -maxdepth 1 -name 'fuzz_*.cpp' -printf '%f\n' | sed 's/\.cpp$//' | sort)
echo "== replay seed corpus and regression inputs"
for f in $fuzzers; do
  inputs=()
  for d in corpus regressions; do
    [[ -d "$root/fuzz/$d/$f" ]] && inputs+=("$root/fuzz/$d/$f")
  done
  [[ ${#inputs[@]} -eq 0 ]] && continue
  if ! ASAN_OPTIONS=$(asan_for "$f") "$build/bin/$f" -runs=0 "${inputs[@]}" > "$build/$f.replay.log" 2>&1; then
    echo "  $f: FAILED (log: $build/$f.replay.log)"; tail -40 "$build/$f.replay.log"; status=1
  else
    echo "  $f: $(find "${inputs[@]}" -type f | wc -l) inputs ok"
  fi
done

if [[ $fuzz_seconds -gt 0 ]]; then
  echo "== fuzz each target for ${fuzz_seconds} s"
  work="$build/fuzz-work"
  for f in $fuzzers; do
    # New inputs go to a scratch corpus (the first folder), never into the repository's seeds.
    rm -rf "${work:?}/$f"; mkdir -p "$work/$f/corpus" "$work/$f/artifacts"
    seeds=()
    [[ -d "$root/fuzz/corpus/$f" ]] && seeds+=("$root/fuzz/corpus/$f")
    [[ -d "$root/fuzz/regressions/$f" ]] && seeds+=("$root/fuzz/regressions/$f")
    if ASAN_OPTIONS=$(asan_for "$f") "$build/bin/$f" -max_total_time="$fuzz_seconds" -seed="$fuzz_seed" -timeout=10 -rss_limit_mb=2560 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$f/artifacts/" \
        "$work/$f/corpus" "${seeds[@]}" > "$work/$f/log" 2>&1; then
      echo "  $f: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$f/log" | grep -Eo '[0-9]+$') runs, no finding"
    else
      echo "  $f: FINDING (log: $work/$f/log, input: $(find "$work/$f/artifacts" -type f | head -1))"
      grep -E 'ERROR|SUMMARY|runtime error' "$work/$f/log" | head -5; status=1
    fi
  done
fi

echo "== hardening: $( [[ $status -eq 0 ]] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
exit $status
