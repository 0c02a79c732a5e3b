#!/usr/bin/env bash
# Runs the figures of bench/README.md that one command makes, in sequence,
# and writes their outputs (text and JSON) plus the chart into OUT_DIR under
# the file names of bench/results/. About 25 minutes on 2 cores.
#
# Usage: bash bench/run_figures.sh BUILD_DIR OUT_DIR
#        bash bench/run_figures.sh --help
#   BUILD_DIR: a Release build with COFFER_BUILD_BENCH=ON (it needs coffer,
#   libcoffer_rocksdb.so and bench/{coffer-bench,micro_bench,tenant_scale,
#   replication-bench}; db_bench, openssl and python3 on PATH).
#
# Runs: coffer-bench (8 comparisons: *-vs-coffer-v*-t*.{json,txt}),
# openssl_speed_compare.sh (openssl-speed.txt), db_bench_compare.sh
# (db-bench.txt), tenant_scale (tenant-scale.{json,txt}), replication-bench
# with the replica in its process (replication-in-process.{json,txt}),
# micro_bench (micro.{json,txt}) and plot_ratios.py (throughput.svg).
# Not run: the pinned replica-process column (replication-process.*) and
# promotion_time.sh; bench/README.md gives their commands.
#
# If a step fails, the script stops with its name and the last lines of its
# output file on stderr (exit 1); the scripts' and micro_bench's own stderr
# goes to the terminal.
set -euo pipefail

me=run_figures.sh
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
if [[ $# -ne 2 || $1 == -* || $2 == -* ]]; then
  echo "$me: usage: bash bench/run_figures.sh BUILD_DIR OUT_DIR (--help for more)" >&2
  exit 2
fi
build=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench="$build/bench"
for tool in coffer bench/coffer-bench bench/micro_bench bench/tenant_scale \
  bench/replication-bench; do
  [[ -x $build/$tool && -f $build/$tool ]] || {
    echo "$me: $build has no $tool (BUILD_DIR must be a build with COFFER_BUILD_BENCH=ON)" >&2
    exit 1
  }
done
[[ -f $build/libcoffer_rocksdb.so ]] ||
  { echo "$me: $build has no libcoffer_rocksdb.so (build the plugin first)" >&2; exit 1; }
for cmd in db_bench openssl python3; do
  command -v "$cmd" >/dev/null || { echo "$me: $cmd is not on PATH" >&2; exit 1; }
done
mkdir -p "$out" || { echo "$me: cannot create $out" >&2; exit 1; }
start=$SECONDS

# failed STEP FILE: the step exited non-zero; shows FILE's last lines.
failed() {
  echo "$me: step '$1' failed; last lines of $2:" >&2
  tail -n 5 "$2" >&2
  exit 1
}

# Encrypted vs plaintext, and Coffer vs RocksDB's per-block CTR baseline:
# fillrandom and readrandom, 100 B and 1 KiB values, 1 and 64 tenants,
# 8 MiB block cache with the data 4x larger, 3 s per run, 5 rounds.
for pair in none,coffer rocksdb-ctr,coffer; do
  for value in 100 1024; do
    for tenants in 1 64; do
      name="${pair/,/-vs-}-v${value}-t${tenants}"
      echo "== coffer-bench $pair value $value tenants $tenants"
      "$bench/coffer-bench" --benchmarks fillrandom,readrandom --compare "$pair" \
        --value-size "$value" --tenants "$tenants" --duration 3 --rounds 5 \
        --block-cache 8MiB --json >"$out/$name.json" 2>"$out/$name.txt" ||
        failed "coffer-bench $pair value $value tenants $tenants" "$out/$name.txt"
      grep '^ratio' "$out/$name.txt"
    done
  done
done

echo "== cipher stream vs openssl speed, 16 KiB"
bash "$here/openssl_speed_compare.sh" "$build" --rounds 5 --seconds 2 |
  tee "$out/openssl-speed.txt" || failed openssl_speed_compare.sh "$out/openssl-speed.txt"

echo "== db_bench plaintext vs db_bench through the plugin"
bash "$here/db_bench_compare.sh" "$build" --rounds 5 | tee "$out/db-bench.txt" ||
  failed db_bench_compare.sh "$out/db-bench.txt"

echo "== tenant scale, 10,000 tenants, 256 open"
"$bench/tenant_scale" --tenants 10000 --max-open 256 --hot 200 --json \
  >"$out/tenant-scale.json" 2>"$out/tenant-scale.txt" ||
  failed tenant_scale "$out/tenant-scale.txt"
grep -v '^\.\.\.' "$out/tenant-scale.txt"

echo "== replication: off vs on, lag at 50% / 90% load, catch-up after a 60 s outage"
"$bench/replication-bench" --json >"$out/replication-in-process.json" \
  2>"$out/replication-in-process.txt" ||
  failed replication-bench "$out/replication-in-process.txt"
grep -v '^\.\.\.' "$out/replication-in-process.txt"

echo "== micro-benchmarks"
"$bench/micro_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/micro.json" --benchmark_out_format=json |
  tee "$out/micro.txt" || failed micro_bench "$out/micro.txt"

python3 "$here/plot_ratios.py" "$out/throughput.svg" "$out"/*-vs-coffer-*.json
echo "== done in $((SECONDS - start)) s; chart: $out/throughput.svg"
