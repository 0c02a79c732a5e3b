#!/usr/bin/env bash
# Runs every figure of bench/README.md in sequence and writes the outputs
# (text and JSON) plus the chart into OUT_DIR. About 25 minutes on 2 cores.
#
# Usage: bash bench/run_figures.sh BUILD_DIR OUT_DIR
#   BUILD_DIR: a Release build with COFFER_BUILD_BENCH=ON
set -euo pipefail

build=${1:?usage: run_figures.sh BUILD_DIR OUT_DIR}
out=${2:?usage: run_figures.sh BUILD_DIR OUT_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench="$build/bench"
mkdir -p "$out"
start=$SECONDS

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
        --block-cache 8MiB --json >"$out/$name.json" 2>"$out/$name.txt"
      grep '^ratio' "$out/$name.txt"
    done
  done
done

echo "== cipher stream vs openssl speed, 16 KiB"
bash "$here/openssl_speed_compare.sh" "$build" --rounds 5 --seconds 2 | tee "$out/openssl-speed.txt"

echo "== db_bench plaintext vs db_bench through the plugin"
bash "$here/db_bench_compare.sh" "$build" --rounds 5 | tee "$out/db-bench.txt"

echo "== tenant scale, 10,000 tenants, 256 open"
"$bench/tenant_scale" --tenants 10000 --max-open 256 --hot 200 --json \
  >"$out/tenant-scale.json" 2>"$out/tenant-scale.txt"
grep -v '^\.\.\.' "$out/tenant-scale.txt"

echo "== replication: off vs on, lag at 50% / 90% load, catch-up after a 60 s outage"
"$bench/replication-bench" --json >"$out/replication.json" 2>"$out/replication.txt"
grep -v '^\.\.\.' "$out/replication.txt"

echo "== micro-benchmarks"
"$bench/micro_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/micro.json" --benchmark_out_format=json | tee "$out/micro.txt"

python3 "$here/plot_ratios.py" "$out/throughput.svg" "$out"/*-vs-coffer-*.json
echo "== done in $((SECONDS - start)) s; chart: $out/throughput.svg"
