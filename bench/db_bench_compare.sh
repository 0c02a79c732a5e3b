#!/usr/bin/env bash
# Debian's db_bench plaintext vs db_bench on a Coffer tenant (the plugin
# libcoffer_rocksdb.so preloaded, --fs_uri=coffer://TENANT@DATA), run
# alternately for R rounds on the same workloads; prints the ratio
# coffer/plain of each workload's ops/sec as the median of the per-round
# pairs, with min and max.
#
# Each run is `db_bench --benchmarks=fillrandom,compact` on a new database
# (use_existing_db=0 destroys and recreates it; for the Coffer side that is
# the dedicated tenant's db directory), then every file of the database is
# read once (so the OS page cache holds them, as it would for a hot data
# set), then `db_bench --benchmarks=readrandom --use_existing_db=1`. The
# default --num makes the data about 4x the block cache (--cache_size), so
# readrandom reads blocks from (encrypted) table files, not from the cache.
#
# Usage: bash bench/db_bench_compare.sh BUILD_DIR [--rounds R] [--num N]
#          [--value-size V] [--cache-size BYTES] [--threads T] [--dir DIR]
set -euo pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

build=${1:-}
[[ -n $build && $build != -* ]] || usage
shift
rounds=5
num=300000
value_size=100
cache_size=$((8 << 20))
threads=1
parent=${TMPDIR:-/tmp}
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --num) num=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --cache-size) cache_size=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "db_bench_compare.sh: unknown option $1" >&2; usage ;;
  esac
done

coffer="$build/coffer"
plugin="$build/libcoffer_rocksdb.so"
command -v db_bench >/dev/null || { echo "db_bench missing (apt-get install rocksdb-tools)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 1; }
[[ -x $coffer ]] || { echo "missing $coffer (build first)" >&2; exit 1; }
[[ -f $plugin ]] || { echo "missing $plugin (build first)" >&2; exit 1; }

tmp=$(mktemp -d "$parent/db-bench-compare-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset COFFER_DATA COFFER_KEY_DIR
key="$tmp/master.key"
data="$tmp/data"
"$coffer" keygen --out "$key" >/dev/null
"$coffer" init --data "$data" --key-file "$key" --cluster-id bench --region local \
  --geography local >/dev/null
"$coffer" tenant create --data "$data" --key-file "$key" bench >/dev/null

workloads=(fillrandom readrandom)
common=(--num="$num" --value_size="$value_size" --cache_size="$cache_size"
  --threads="$threads" --seed=301 --statistics=0 --histogram=0)

# A sanitizer build's plugin needs its runtime loaded first into db_bench.
preload=$plugin
asan_rt=$(ldd "$plugin" | grep -o '/[^ ]*libasan\.so[^ ]*' || true)
[[ -z $asan_rt ]] || preload="$asan_rt $plugin"
[[ -z $asan_rt ]] || export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# db_bench_on SIDE ARGS...: db_bench on the plain or the Coffer database.
db_bench_on() {
  local side=$1
  shift
  if [[ $side == plain ]]; then
    db_bench --db="$tmp/plain" "${common[@]}" "$@" 2>&1
  else
    COFFER_KEY_FILE="$key" LD_PRELOAD="$preload" db_bench \
      --fs_uri="coffer://bench@$data" --db="$data/tenants/bench/db" \
      "${common[@]}" "$@" 2>&1
  fi
}

# run_side SIDE ROUND: fill, warm, read; appends "SIDE ROUND WORKLOAD OPS"
# lines to $tmp/results.
run_side() {
  local side=$1 round=$2 out dir
  out=$(db_bench_on "$side" --benchmarks=fillrandom,compact --use_existing_db=0)
  if [[ $side == plain ]]; then dir="$tmp/plain"; else dir="$data/tenants/bench/db"; fi
  cat "$dir"/* >/dev/null 2>&1 || true
  out+=$'\n'$(db_bench_on "$side" --benchmarks=readrandom --use_existing_db=1)
  for w in "${workloads[@]}"; do
    local line
    line=$(grep -E "^$w +:" <<<"$out" || true)
    if [[ -z $line ]]; then
      echo "db_bench ($side) printed no $w line:" >&2
      echo "$out" | tail -n 20 >&2
      exit 1
    fi
    echo "$line [$side, round $round/$rounds]"
    echo "$side $round $w $(awk '{print $5}' <<<"$line")" >>"$tmp/results"
  done
}

echo "db_bench $(db_bench --version 2>/dev/null | head -n 1 || true): num $num," \
  "value_size $value_size, cache_size $cache_size, threads $threads, $rounds rounds"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs"
: >"$tmp/results"
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 1)); then order=(plain coffer); else order=(coffer plain); fi
  for side in "${order[@]}"; do run_side "$side" "$r"; done
done

python3 - "$tmp/results" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, rnd, workload, ops = line.split()
    runs[(side, int(rnd), workload)] = float(ops)
workloads = []
for (_, _, w) in runs:
    if w not in workloads:
        workloads.append(w)
rounds = sorted({r for (_, r, _) in runs})
for w in workloads:
    pairs = [runs[("coffer", r, w)] / runs[("plain", r, w)]
             for r in rounds if ("coffer", r, w) in runs and runs.get(("plain", r, w))]
    plain = statistics.median(runs[("plain", r, w)] for r in rounds)
    coffer = statistics.median(runs[("coffer", r, w)] for r in rounds)
    print(f"ratio coffer/plain {w:<12} : median {statistics.median(pairs):.3f}  "
          f"min {min(pairs):.3f}  max {max(pairs):.3f}  ({len(pairs)} pairs; "
          f"median ops/sec plain {plain:.0f}, coffer {coffer:.0f})")
EOF
