#!/usr/bin/env bash
# Smoke test of the benchmark tools (bench/): each runs with tiny sizes and
# its output is checked for format and sanity (lines in db_bench's format,
# ops/sec > 0, ratio lines, JSON that parses, an SVG that parses). Never
# checks performance.
#
# Usage: bash tests/bench_smoke_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail

source_dir=${2:?usage: bench_smoke_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
build=${3:?usage: bench_smoke_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
bench="$build/bench"
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# Runs a python3 snippet on a file; the snippet exits non-zero to fail.
py_check() {  # py_check DESCRIPTION FILE CODE
  check "$1" python3 -c "$3" "$2"
}

if [[ ! -d $bench ]]; then
  echo "bench_smoke_test: skipped, benchmarks not configured (COFFER_BUILD_BENCH=OFF)"
  exit 0
fi
for tool in coffer-bench micro_bench tenant_scale; do
  [[ -x $bench/$tool ]] || { echo "missing $bench/$tool"; exit 1; }
done
command -v python3 >/dev/null || { echo "missing python3"; exit 1; }

line_re='^[a-z]+ +: +[0-9]+\.[0-9]{3} micros/op [0-9]+ ops/sec [0-9]+\.[0-9]{3} seconds [0-9]+ operations; +[0-9]+\.[0-9] MB/s'

# ---- coffer-bench: every workload, two modes side by side -------------------
workloads=(fillseq fillrandom readrandom readwhilewriting seekrandom ycsba)
out="$tmp/compare.txt"
check "coffer-bench --compare runs" "$bench/coffer-bench" --dir "$tmp" \
  --benchmarks "$(IFS=,; echo "${workloads[*]}")" --compare none,coffer \
  --rounds 2 --num 2000 --ops 2000 --block-cache 256KiB --scan-length 10 \
  --write-rate 20000 >"$out" 2>"$tmp/compare.err"
for w in "${workloads[@]}"; do
  for m in none coffer; do
    n=$(grep -cE "$line_re .*\[$m, round [12]/2\]" <(grep -E "^$w +:" "$out") || true)
    check "$w [$m]: two result lines in db_bench format" test "$n" -eq 2
  done
  check "$w: a ratio line" grep -qE "^ratio coffer/none $w +: median [0-9]+\.[0-9]{3}  min [0-9.]+  max [0-9.]+" "$out"
done
check "no result line reports 0 ops/sec" bash -c "! grep -E ' 0 ops/sec' '$out'"
check "percentile lines follow the results" \
  test "$(grep -cE '^ +Percentiles: P50: [0-9.]+ P99: [0-9.]+ P99.9: [0-9.]+ micros/op' "$out")" -eq 24
check "reads find every loaded key" \
  bash -c "grep -E '^readrandom ' '$out' | grep -qE '\\((2000) of 2000 found\\)'"
check "scratch directories are removed" \
  bash -c "! ls -d '$tmp'/coffer-bench-* 2>/dev/null"

# ---- coffer-bench --json, several tenants and threads, baseline mode ---------
json="$tmp/bench.json"
check "coffer-bench --json runs" "$bench/coffer-bench" --dir "$tmp" --json \
  --benchmarks fillrandom,readrandom --compare rocksdb-ctr,coffer --rounds 1 \
  --tenants 3 --threads 2 --num 1000 --value-size 1024 --block-cache 512KiB \
  >"$json" 2>"$tmp/json.err"
py_check "JSON has runs and ratios" "$json" '
import json, sys
d = json.load(open(sys.argv[1]))
runs, ratios = d["runs"], d["ratios"]
assert len(runs) == 4, runs
assert all(r["ops_per_sec"] > 0 and r["ops"] == 3000 for r in runs), runs
assert {r["mode"] for r in runs} == {"rocksdb-ctr", "coffer"}
assert [r["workload"] for r in ratios] == ["fillrandom", "readrandom"]
assert all(r["a"] == "rocksdb-ctr" and r["b"] == "coffer" and r["median"] > 0 for r in ratios)
assert d["options"]["tenants"] == 3 and d["options"]["value_size"] == 1024
assert d["machine"]["cpus"] >= 1
rr = [r for r in runs if r["workload"] == "readrandom"]
assert all(r["found"] == r["reads"] == 3000 and r["table_bytes"] > 0 for r in rr), rr
'
check "--json keeps the text on stderr" grep -qE "^fillrandom +:" "$tmp/json.err"

# ---- the chart ----------------------------------------------------------------
svg="$tmp/chart.svg"
check "plot_ratios.py writes an SVG" python3 "$source_dir/bench/plot_ratios.py" "$svg" "$json" \
  >"$tmp/table.txt"
check "and prints a Markdown row per ratio" \
  test "$(grep -cE '^\| (fillrandom|readrandom) \| 1 KiB \| 3 \| coffer/rocksdb-ctr \| \*\*[0-9.]+\*\*' "$tmp/table.txt")" -eq 2
py_check "the SVG parses as XML with bars" "$svg" '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag.endswith("svg")
rects = [e for e in root.iter() if e.tag.endswith("rect")]
assert len(rects) >= 5, len(rects)
'

# ---- usage errors -------------------------------------------------------------
set +e
"$bench/coffer-bench" --mode bogus >/dev/null 2>"$tmp/usage.err"
rc=$?
set -e
check "an unknown mode is a usage error (exit 2)" test $rc -eq 2
check "which names the mode" grep -q "bogus" "$tmp/usage.err"

# ---- micro_bench ------------------------------------------------------------------
micro="$tmp/micro.json"
check "micro_bench runs" "$bench/micro_bench" --benchmark_min_time=0.01 \
  --benchmark_format=json \
  --benchmark_filter='^(BM_CtrCipherStream/4096|BM_OpensslEvpAes256Ctr/4096|BM_PerBlockCtr/4096|BM_AeadSeal|BM_AeadOpen|BM_FileKeyProviderWrap|BM_FileKeyProviderUnwrap|BM_FrameEncode/1024|BM_FrameDecode/1024|BM_EnginePut/none|BM_EngineGet/coffer)$' \
  >"$micro" 2>"$tmp/micro.err"
py_check "micro_bench JSON reports bytes/second for each" "$micro" '
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
names = {r["name"] for r in runs}
want = {"BM_CtrCipherStream/4096", "BM_OpensslEvpAes256Ctr/4096", "BM_PerBlockCtr/4096",
        "BM_AeadSeal", "BM_AeadOpen", "BM_FileKeyProviderWrap", "BM_FileKeyProviderUnwrap",
        "BM_FrameEncode/1024", "BM_FrameDecode/1024", "BM_EnginePut/none", "BM_EngineGet/coffer"}
assert names == want, names ^ want
assert not any(r.get("error_occurred") for r in runs), [r for r in runs if r.get("error_occurred")]
assert all(r["bytes_per_second"] > 0 for r in runs)
'

# ---- tenant_scale -----------------------------------------------------------------
scale="$tmp/scale.json"
check "tenant_scale runs" "$bench/tenant_scale" --dir "$tmp" --json --tenants 40 \
  --max-open 8 --hot 4 --cold-samples 10 --read-seconds 0.2 --rounds 2 \
  >"$scale" 2>"$tmp/scale.err"
py_check "tenant_scale JSON is sane" "$scale" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tenants"] == 40 and d["max_open_tenants"] == 8
assert d["peak_rss_bytes"] >= d["rss_after_touch_bytes"] > 0
assert d["cold_open_samples"] == 10 and 0 < d["cold_open_p50_ms"] <= d["cold_open_p99_ms"]
assert d["read_all_ops_per_sec"] > 0 and d["read_hot_ops_per_sec"] > 0
assert 0 < d["ratio_all_hot"]
assert d["tenant_opens"] >= 40 and d["total_seconds"] > 0
'
check "tenant_scale prints the RSS line" grep -qE "^rss +: peak \(VmHWM\) [0-9.]+ MiB" "$tmp/scale.err"

# ---- replication-bench ------------------------------------------------------------
repl="$tmp/replication.json"
check "replication-bench runs" "$bench/replication-bench" --dir "$tmp" --json \
  --seconds 0.5 --rounds 1 --lag-seconds 1 --outage-seconds 1 \
  >"$repl" 2>"$tmp/replication.err"
py_check "replication-bench JSON is sane" "$repl" '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["throughput"]
assert t["off_median"] > 0 and t["on_median"] > 0 and t["ratio_median"] > 0
assert [l["load"] for l in d["lag"]] == [0.5, 0.9]
assert all(l["samples"] > 0 and 0 <= l["status_lag_p50_ms"] <= l["status_lag_p99_ms"] for l in d["lag"])
o = d["outage"]
assert o["backlog_writes"] > 0 and o["catch_up_writes_per_sec"] > 0 and o["reseeds"] == 0
'
check "replication-bench prints the ratio line" \
  grep -qE "^ratio on/off +: median [0-9]+\.[0-9]{3}" "$tmp/replication.err"

# ---- the comparison scripts -----------------------------------------------------
out="$tmp/openssl.txt"
check "openssl_speed_compare.sh runs" bash "$source_dir/bench/openssl_speed_compare.sh" \
  "$build" --rounds 1 --seconds 1 >"$out" 2>&1
check "it prints the ratio" grep -qE "^ratio stream/openssl-speed aes-256-ctr : median [0-9]+\.[0-9]{3}" "$out"

out="$tmp/db_bench.txt"
check "db_bench_compare.sh runs" env TMPDIR="$tmp" bash \
  "$source_dir/bench/db_bench_compare.sh" "$build" --rounds 1 --num 2000 >"$out" 2>&1
for w in fillrandom readrandom; do
  check "db_bench $w ratio line" grep -qE "^ratio coffer/plain $w +: median [0-9]+\.[0-9]{3}" "$out"
  check "db_bench $w result lines for both sides" \
    test "$(grep -cE "^$w +: .* ops/sec .*\[(plain|coffer), round 1/1\]" "$out")" -eq 2
done

if [[ $failures -gt 0 ]]; then
  for f in "$tmp"/*.txt "$tmp"/*.err; do
    echo "---- $(basename "$f")"
    tail -n 15 "$f"
  done
fi
echo "bench_smoke_test: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
