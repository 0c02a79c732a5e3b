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
# The wall time covers every thread'"'"'s work: micros/op x ops (the threads'"'"'
# summed time) is at most seconds x threads. Short runs show a clock started
# late.
check "coffer-bench: many short runs" "$bench/coffer-bench" --dir "$tmp" \
  --json --benchmarks fillrandom,readrandom --mode none --rounds 15 \
  --threads 2 --num 2000 >"$tmp/short.json" 2>/dev/null
py_check "each run's wall time covers its threads' time" "$tmp/short.json" '
import json, sys
d = json.load(open(sys.argv[1]))
threads = d["options"]["threads"]
bad = [r for r in d["runs"]
       if r["micros_per_op"] * r["ops"] / 1e6 > r["seconds"] * threads * 1.001]
assert len(d["runs"]) == 30 and not bad, bad
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
# usage_error TOOL PATTERN ARGS...: TOOL ARGS exits 2 before doing anything,
# with one line on stderr matching PATTERN (extended regex).
usage_error() {
  local tool=$1 pattern=$2 rc=0
  shift 2
  "$bench/$tool" "$@" >"$tmp/usage.out" 2>"$tmp/usage.err" || rc=$?
  checks=$((checks + 1))
  if [[ $rc -ne 2 ]]; then
    fail "$tool $*: exit $rc, want 2: $(head -c 300 "$tmp/usage.err")"
  elif [[ $(wc -l <"$tmp/usage.err") -ne 1 ]] ||
    ! grep -Eq -- "^$tool: .*$pattern" "$tmp/usage.err"; then
    fail "$tool $*: stderr is not one line matching /$pattern/: $(cat "$tmp/usage.err")"
  elif [[ -s $tmp/usage.out ]]; then
    fail "$tool $*: printed on stdout: $(head -c 300 "$tmp/usage.out")"
  else
    pass "$tool $*"
  fi
}
usage_error coffer-bench "unknown mode 'bogus'" --mode bogus
usage_error coffer-bench "--bogus" --bogus
# Negative numbers were wrapped into huge unsigned ones (--num -1 ran for
# ever), zero and out-of-range values silently replaced or accepted.
usage_error coffer-bench "--num: '-1' is not an integer >= 1" --num -1
usage_error coffer-bench "--num: 'abc'" --num abc
usage_error coffer-bench "--ops: '-1'" --ops -1
usage_error coffer-bench "--write-rate: '-5'" --write-rate -5
usage_error coffer-bench "--duration: '-1'" --duration -1
usage_error coffer-bench "--rounds: '0'" --rounds 0
usage_error coffer-bench "--scan-length: '-5'" --scan-length -5
usage_error coffer-bench "--threads: '0'" --threads 0
usage_error coffer-bench "--tenants: '10001'" --tenants 10001
usage_error coffer-bench "--value-size: '0'" --value-size 0
usage_error coffer-bench "--block-cache: size '1.5MiB' is not a whole number" \
  --block-cache 1.5MiB
# Values were silently cut to the generator's 1 MiB.
usage_error coffer-bench "--value-size: '1048577' is not an integer from 1 to 1048576" \
  --value-size 1048577
# A mistyped --dir was created (and left behind).
usage_error coffer-bench "--dir $tmp/no/such is not an existing directory" \
  --dir "$tmp/no/such"
check "and was not created" test ! -e "$tmp/no"
usage_error tenant_scale "--max-open: '-1'" --max-open -1
usage_error tenant_scale "--cold-samples: '-3'" --cold-samples -3
usage_error tenant_scale "--read-seconds: '0'" --read-seconds 0
usage_error tenant_scale "--hot 7 exceeds --tenants 6" --hot 7 --tenants 6
usage_error tenant_scale "--hot 300 exceeds --max-open 256" --hot 300
usage_error tenant_scale "--mode: unknown mode 'foo'" --mode foo
usage_error replication-bench "--num: '-1'" --num -1
usage_error replication-bench "--value-size: '0'" --value-size 0
usage_error replication-bench "--seconds: '0'" --seconds 0
usage_error replication-bench "--pin needs --replica-process" --pin

# ---- interrupted runs clean up ----------------------------------------------------
# wait_for COUNT SECONDS COMMAND...: until COMMAND prints COUNT or more lines.
wait_for() {
  local want=$1 i
  shift 1
  for ((i = 0; i < $1 * 20; i++)); do
    [[ $("${@:2}" 2>/dev/null | wc -l) -ge $want ]] && return 0
    sleep 0.05
  done
  return 1
}
# empty_within SECONDS DIR: DIR is (or becomes) empty within SECONDS.
empty_within() {
  local i
  for ((i = 0; i < $1 * 20; i++)); do
    [[ -z $(ls -A "$2") ]] && return 0
    sleep 0.05
  done
  return 1
}
# interrupted TOOL SIGNAL WAIT_FOR_CHILD ARGS...: TOOL ARGS, stopped by
# SIGNAL once its scratch directory (and, if WAIT_FOR_CHILD, its replica
# process) exists, exits 128+SIGNAL with a line saying so, leaving no child
# behind; its scratch directory goes once it has exited.
interrupted() {
  local tool=$1 sig=$2 child=$3 dir=$tmp/interrupted-$1 pid rc=0
  shift 3
  mkdir -p "$dir"
  "$bench/$tool" --dir "$dir" "$@" >/dev/null 2>"$tmp/int.err" &
  pid=$!
  started "$pid"
  check "$tool makes its scratch directory" wait_for 1 30 ls -A "$dir"
  if [[ $child == yes ]]; then
    check "$tool starts its replica" wait_for 1 30 pgrep -f "replica serv[e] --data $dir/"
  fi
  kill -"$sig" "$pid"
  wait "$pid" || rc=$?
  bg_pids=${bg_pids/ $pid / }
  check "SIG$sig stops $tool with 128 + the signal ($rc)" \
    test "$rc" -eq $((128 + $(kill -l "$sig")))
  [[ $rc -eq $((128 + $(kill -l "$sig"))) ]] || tail -5 "$tmp/int.err" >&2
  check "$tool says it was interrupted and cleans up" grep -q \
    "^$tool: interrupted by SIG$sig; removing 1 scratch directory$" "$tmp/int.err"
  check "$tool left no scratch directory (removed after its exit)" \
    empty_within 10 "$dir"
  # (serv[e]: the pattern must not match this bash -c itself)
  check "$tool left no replica process" bash -c \
    "! pgrep -f 'replica serv[e] --data $dir/'"
}
interrupted coffer-bench INT no -b fillrandom --num 10000000 --duration 60
interrupted tenant_scale TERM no --tenants 100000 --max-open 10 --hot 5
# (its off-run comes first: the replica starts after --seconds)
interrupted replication-bench TERM yes --replica-process --num 1000 \
  --seconds 3 --rounds 1

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
