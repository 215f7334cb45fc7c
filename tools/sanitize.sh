#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer and UndefinedBehaviorSanitizer: a CPU-only build
# (-DLEUKO_CUDA=OFF -DLEUKO_SANITIZE=address,undefined) in build-asan/ (or $LEUKO_ASAN_BUILD_DIR),
# then `ctest -L cpu` (less the Python tools' runs, label python), then the file readers' tests
# once more with every allocation filled with garbage. Any memory error, leak or undefined
# behaviour aborts its test file, so the run fails. Arguments go to ctest, e.g.
# tools/sanitize.sh -R data.
#   LEUKO_SANITIZE=thread tools/sanitize.sh -R 'loader|autograd'   ThreadSanitizer instead
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitizers=${LEUKO_SANITIZE:-address,undefined}
build=${LEUKO_ASAN_BUILD_DIR:-$root/build-asan}
start=$(date +%s)
"$root/tools/deps.sh" --tests
mkdir -p "$build"
# -O2 -g: reports with line numbers, and the kernels still vectorised (the training tests are
# several times slower at -O1).
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" \
  -DLEUKO_CUDA=OFF -DLEUKO_SANITIZE="$sanitizers" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "sanitize: cmake configure failed" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$build/build.log" | head -40 >&2; echo "sanitize: build failed" >&2; exit 1; }
built=$(date +%s)

# LeakSanitizer needs ptrace-like access that some containers deny: leak checks where it works.
leaks=1
if [[ $sanitizers == *address* ]]; then
  probe=$(ASAN_OPTIONS=detect_leaks=1 "$build/tests/leuko_tests" --test-case='*no such test*' 2>&1 || true)
  if grep -q "LeakSanitizer has encountered a fatal error" <<<"$probe"; then
    leaks=0
    echo "sanitize: LeakSanitizer cannot run here (no ptrace?); leak checks off"
  fi
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=$leaks:halt_on_error=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
# OpenMP threads that spin would starve the other test processes (as in tools/test.sh).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
set +e
(cd "$build" && ctest -L cpu -LE python --output-on-failure -j "$(nproc)" --timeout 2700 "$@") 2>&1 | tee "$build/ctest.log"
rc=${PIPESTATUS[0]}
# Fresh memory from the system is zeros, which hides reads of memory that a decoder never wrote
# (stb_image decoding with a Huffman table no segment defined: benign on zeros, a crash on a
# used heap). The readers of files from strangers again, each allocation filled with 0xbe.
if [[ $sanitizers == *address* ]] && [ $# -eq 0 ] && [ "$rc" = 0 ]; then
  echo "sanitize: the file readers again, allocations filled with garbage (max_malloc_fill_size)"
  (cd "$build" && ASAN_OPTIONS="$ASAN_OPTIONS:max_malloc_fill_size=16777216" \
    ctest -L cpu --output-on-failure -R 'fuzz/|data/test_image|data/test_dataset|tensor/test_safetensors') \
    2>&1 | tee -a "$build/ctest.log"
  rc=${PIPESTATUS[0]}
fi
set -e
done_at=$(date +%s)
echo
echo "== sanitize summary ($sanitizers) =="
echo "build: $((built - start)) s, tests: $((done_at - built)) s"
grep -E "tests passed|tests failed" "$build/ctest.log" || true
if [ "$rc" != 0 ]; then
  echo "-- sanitizer reports --"
  grep -E "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|WARNING: ThreadSanitizer" "$build/ctest.log" | sort | uniq -c | head -20
fi
exit "$rc"
