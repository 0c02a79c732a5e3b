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
#        bash bench/db_bench_compare.sh --help
#   --rounds 5, --num 300000 (keys), --value-size 100, --cache-size 8388608,
#   --threads 1: positive integers. --dir: the existing directory under which
#   the scratch directory (both databases, removed on exit) is made; default
#   $TMPDIR or /tmp.
set -euo pipefail

me=db_bench_compare.sh
usage() {  # the header comment above, on stdout
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
}
die() { echo "$me: $*" >&2; exit 2; }

[[ ${1:-} == -h || ${1:-} == --help ]] && usage
build=${1:-}
[[ -n $build && $build != -* ]] ||
  die "usage: bash bench/db_bench_compare.sh BUILD_DIR [options] (--help for the options)"
shift
rounds=5
num=300000
value_size=100
cache_size=$((8 << 20))
threads=1
parent=${TMPDIR:-/tmp}
# value OPTION VALUE...: VALUE, or an error if the option has none.
value() { [[ $# -ge 2 ]] || die "$1 needs a value"; printf '%s' "$2"; }
# positive OPTION VALUE: VALUE must be a positive integer (below 10^18).
positive() {
  [[ $2 =~ ^[0-9]{1,18}$ && $((10#$2)) -gt 0 ]] ||
    die "$1 must be a positive integer, not '$2'"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$(value "$@"); positive "$1" "$rounds"; shift 2 ;;
    --num) num=$(value "$@"); positive "$1" "$num"; shift 2 ;;
    --value-size) value_size=$(value "$@"); positive "$1" "$value_size"; shift 2 ;;
    --cache-size) cache_size=$(value "$@"); positive "$1" "$cache_size"; shift 2 ;;
    --threads) threads=$(value "$@"); positive "$1" "$threads"; shift 2 ;;
    --dir) parent=$(value "$@"); shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown option '$1' (--help for the options)" ;;
  esac
done
[[ -d $parent && -w $parent ]] || die "--dir $parent is not a writable directory"
rounds=$((10#$rounds)) num=$((10#$num)) value_size=$((10#$value_size))
cache_size=$((10#$cache_size)) threads=$((10#$threads))

coffer="$build/coffer"
plugin="$build/libcoffer_rocksdb.so"
command -v db_bench >/dev/null || { echo "$me: db_bench missing (apt-get install rocksdb-tools)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$me: python3 missing" >&2; exit 1; }
[[ -x $coffer ]] || { echo "$me: missing $coffer (build first)" >&2; exit 1; }
[[ -f $plugin ]] || { echo "$me: missing $plugin (build first)" >&2; exit 1; }

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

# bench_failed SIDE WHAT OUTPUT: db_bench exited non-zero; shows its last lines.
bench_failed() {
  echo "$me: db_bench ($1, $2) failed:" >&2
  grep -v '^ *$' <<<"$3" | tail -n 3 >&2
  exit 1
}

# run_side SIDE ROUND: fill, warm, read; appends "SIDE ROUND WORKLOAD OPS"
# lines to $tmp/results.
run_side() {
  local side=$1 round=$2 out more dir
  out=$(db_bench_on "$side" --benchmarks=fillrandom,compact --use_existing_db=0) ||
    bench_failed "$side" fillrandom,compact "$out"
  if [[ $side == plain ]]; then dir="$tmp/plain"; else dir="$data/tenants/bench/db"; fi
  cat "$dir"/* >/dev/null 2>&1 || true
  more=$(db_bench_on "$side" --benchmarks=readrandom --use_existing_db=1) ||
    bench_failed "$side" readrandom "$more"
  out+=$'\n'$more
  for w in "${workloads[@]}"; do
    local line
    line=$(grep -E "^$w +:" <<<"$out" || true)
    if [[ -z $line ]]; then
      echo "$me: db_bench ($side) printed no $w line:" >&2
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
failed = False
for w in workloads:
    pairs = [runs[("coffer", r, w)] / runs[("plain", r, w)]
             for r in rounds if ("coffer", r, w) in runs and runs.get(("plain", r, w))]
    if not pairs:
        print(f"db_bench_compare.sh: no ratio for {w}: plain db_bench reported "
              "0 ops/sec in every round", file=sys.stderr)
        failed = True
        continue
    plain = statistics.median(runs[("plain", r, w)] for r in rounds)
    coffer = statistics.median(runs[("coffer", r, w)] for r in rounds)
    print(f"ratio coffer/plain {w:<12} : median {statistics.median(pairs):.3f}  "
          f"min {min(pairs):.3f}  max {max(pairs):.3f}  ({len(pairs)} pairs; "
          f"median ops/sec plain {plain:.0f}, coffer {coffer:.0f})")
sys.exit(1 if failed else 0)
EOF
