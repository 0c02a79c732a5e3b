#!/usr/bin/env bash
# Fuzzes the parsers of untrusted and on-disk bytes with libFuzzer (clang-14,
# AddressSanitizer + UndefinedBehaviorSanitizer), one target after another.
#
#   tests/fuzz/run_fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 60 s for each target of tests/fuzz/*_fuzz.cc. Installs clang-14 and
# libclang-rt-14-dev if missing (Debian, root or sudo), builds in ./build-fuzz
# (BUILD_DIR overrides). Each target runs on a scratch copy of its seed
# corpus and regression inputs; the repository is not changed. New inputs,
# logs and any crash reproducer stay in the work directory printed at the
# end. A reproducer belongs in tests/fuzz/regressions/<target>/ once the bug
# is fixed. Prints one line per target: seconds, executions, crashes; exits
# 1 if any target crashed.
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build_dir=${BUILD_DIR:-$root/build-fuzz}
jobs=${JOBS:-$(nproc)}

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$here"/*_fuzz.cc; do
    n=$(basename "$f" .cc)
    targets+=("${n%_fuzz}")
  done
fi
for t in "${targets[@]}"; do
  [ -f "$here/${t}_fuzz.cc" ] || { echo "run_fuzz.sh: no target '$t'" >&2; exit 2; }
done

packages=(clang-14 libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "run_fuzz.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# The library and the targets get coverage instrumentation and both
# sanitizers; only the <name>_fuzz binaries link libFuzzer's main.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DCOFFER_SANITIZE=address,undefined -DCOFFER_FUZZ=ON \
  -DCOFFER_BUILD_BENCH=OFF >/dev/null
build_targets=()
for t in "${targets[@]}"; do build_targets+=("${t}_fuzz"); done
cmake --build "$build_dir" -j "$jobs" --target "${build_targets[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-fuzz-run.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
failed=0
for t in "${targets[@]}"; do
  dir="$work/$t"
  # Targets write their scratch files on every input: keep them in memory.
  scratch="$dir/tmp"
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    scratch=$(mktemp -d /dev/shm/coffer-fuzz.XXXXXX)
  fi
  mkdir -p "$dir/corpus" "$scratch"
  cp "$here/corpus/$t"/* "$dir/corpus/"
  if [ -d "$here/regressions/$t" ]; then
    cp "$here/regressions/$t"/* "$dir/corpus/" 2>/dev/null || true
  fi
  echo "run_fuzz.sh: $t for ${seconds}s (log: $dir/log)"
  start=$SECONDS
  rc=0
  (cd "$dir" && TMPDIR="$scratch" "$build_dir/tests/fuzz/${t}_fuzz" \
     -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
     -rss_limit_mb=4096 -artifact_prefix="$dir/" corpus >"$dir/log" 2>&1) ||
    rc=$?
  elapsed=$((SECONDS - start))
  rm -rf "$scratch"
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$dir/log" | tail -1)
  crashes=$(find "$dir" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
              -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  [ "$crashes" -eq 0 ] || failed=1
  summary+=("$(printf '%-22s %6ss %12s executions %3s crashes' \
                 "$t" "$elapsed" "${execs:-?}" "$crashes")")
done
echo
echo "run_fuzz.sh: results (work directory $work)"
printf '%s\n' "${summary[@]}"
exit "$failed"
