#!/usr/bin/env bash
# libFuzzer over leuko's readers of files from strangers (tests/fuzz/): safetensors files,
# images, and a run folder's split.json / config.json / log.csv. Builds the fuzz targets with
# clang (-DLEUKO_FUZZ=ON, AddressSanitizer and UndefinedBehaviorSanitizer, CPU-only) into
# build-fuzz/ (or $LEUKO_FUZZ_BUILD_DIR), then runs each for LEUKO_FUZZ_SECONDS (default 60)
# over a copy of its seed corpus (tests/fuzz/corpus/<target>/) and its past crashes
# (tests/fuzz/regressions/<target>/). Fails when a target finds a crash, a leak, a timeout or an
# excessive allocation, and prints the input that reproduces it.
#   tools/fuzz.sh                 all targets
#   tools/fuzz.sh image           one (safetensors, image, split)
# Each run draws a new random seed, so it explores further than the last: the way to look for
# bugs (LEUKO_FUZZ_SECONDS=1800 for a deeper search). CI instead replays a fixed search, the
# same on every run, so that a commit's CI result is the commit's own and not luck's:
#   LEUKO_FUZZ_SEED=1 LEUKO_FUZZ_RUNS=ci tools/fuzz.sh    (.ci/run: seed 1, a fixed count of
#   inputs per target, about a minute each on a CI machine; LEUKO_FUZZ_RUNS=N: N inputs each)
# A reproducer becomes a regression test: copy it to tests/fuzz/regressions/<target>/ (name it
# after the bug), fix the bug; test_fuzz_regressions.cpp replays it in every test run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LEUKO_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${LEUKO_FUZZ_SECONDS:-60}
seed=${LEUKO_FUZZ_SEED:-0}  # 0: libFuzzer draws one
runs=${LEUKO_FUZZ_RUNS:-}   # empty: as many as fit in $seconds
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors image split)
start=$(date +%s)

"$root/tools/deps.sh" --fuzz
mkdir -p "$build"
# -O1 -g: the usual fuzzing build (fast enough, exact line numbers). No tests: only the targets.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DLEUKO_CUDA=OFF -DLEUKO_FUZZ=ON -DLEUKO_TESTS=OFF \
  >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "fuzz: cmake configure failed" >&2; exit 1; }
cmake --build "$build" --target fuzz -j "$(nproc)" >"$build/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$build/build.log" | head -40 >&2; echo "fuzz: build failed" >&2; exit 1; }
built=$(date +%s)

# Largest input per target: a few small tensors; a small image; a split or config file.
declare -A max_len=([safetensors]=4096 [image]=16384 [split]=4096)
# LEUKO_FUZZ_RUNS=ci: inputs per target that take about 60 s on a 2-core CI machine.
declare -A ci_runs=([safetensors]=250000 [image]=50000 [split]=120000)
case "$runs" in
  "" | ci) ;;
  *[!0-9]*) echo "fuzz: LEUKO_FUZZ_RUNS='$runs' is not a count of inputs (or 'ci')" >&2; exit 2 ;;
esac
case "$seed" in
  *[!0-9]* | "") echo "fuzz: LEUKO_FUZZ_SEED='$seed' is not a whole number" >&2; exit 2 ;;
esac
# max_malloc_fill_size: each allocation filled with 0xbe, not the system's zeros, so that a read
# of memory the decoder never wrote shows (see tools/sanitize.sh).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:max_malloc_fill_size=16777216}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# One OpenMP thread: a fuzz input is tiny, and thread start-up would only cost executions.
export OMP_NUM_THREADS=1
failed=()
summary=()
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz: no target '$t' (safetensors, image, split)" >&2; exit 2; }
  work="$build/run/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$work/corpus/"
  if compgen -G "$root/tests/fuzz/regressions/$t/*" >/dev/null; then cp "$root/tests/fuzz/regressions/$t/"* "$work/corpus/"; fi
  dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  limit=(-max_total_time="$seconds")
  what="$seconds s"
  if [ "$runs" = ci ]; then
    limit=(-runs="${ci_runs[$t]}"); what="${ci_runs[$t]} inputs"
  elif [ -n "$runs" ]; then
    limit=(-runs="$runs"); what="$runs inputs"
  fi
  [ "$seed" != 0 ] && what="$what, seed $seed"
  echo "fuzz: $t for $what (log: $work/fuzz.log)"
  set +e
  # -timeout: one input may take 10 s (a hang otherwise); -rss_limit_mb: 2 GB, libFuzzer's
  # default, also caps a single allocation (a tiny file must not make leuko allocate gigabytes).
  "$build/fuzz_$t" "$work/corpus" "${dict[@]}" "${limit[@]}" -seed="$seed" -max_len="${max_len[$t]}" \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    >"$work/fuzz.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -m1 -oE "stat::number_of_executed_units: *[0-9]+" "$work/fuzz.log" | grep -oE "[0-9]+$" || echo "?")
  cov=$(grep -oE "cov: [0-9]+" "$work/fuzz.log" | tail -1 || true)
  if [ $rc = 0 ]; then
    summary+=("$(printf '  %-12s pass: %s inputs, %s' "$t" "$execs" "${cov:-cov: ?}")")
  else
    failed+=("$t")
    summary+=("$(printf '  %-12s FAIL (exit %s)' "$t" "$rc")")
    grep -m3 -E "ERROR: |runtime error:|==[0-9]+== ?ERROR" "$work/fuzz.log" | sed 's/^/    /' || true
    for a in "$work/artifacts/"*; do
      [ -e "$a" ] || continue
      summary+=("    reproducer: $a")
      summary+=("    rerun:      $build/fuzz_$t $a")
    done
  fi
done
echo
echo "== fuzz summary (build $((built - start)) s, fuzzing $(($(date +%s) - built)) s) =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} found a bug; copy each reproducer to tests/fuzz/regressions/<target>/ and fix it"
  exit 1
fi
