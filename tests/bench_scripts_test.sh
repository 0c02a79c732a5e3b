#!/usr/bin/env bash
# Error handling of the benchmark scripts in bench/: every bad option, a
# missing build, and a failing db_bench, openssl, replica daemon, workload or
# benchmark step must end in a short message that names what was wrong and a
# non-zero exit (2 for usage errors), never a traceback, a bash "unbound
# variable" or a silent exit. Plus the cheap happy paths: plot_ratios.py on
# bench/results/, promotion_time.sh with 1 tenant, db_bench_compare.sh with
# 500 keys. Failures are simulated with stand-ins for coffer, db_bench,
# openssl and the bench tools that print one line and exit non-zero.
#
# Usage: bash tests/bench_scripts_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail

coffer=${1:?usage: bench_scripts_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
source_dir=${2:?usage: bench_scripts_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
build=${3:?usage: bench_scripts_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
coffer=$(realpath "$coffer")
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

if [[ ! -d $build/bench ]]; then
  echo "bench_scripts_test: skipped, benchmarks not configured (COFFER_BUILD_BENCH=OFF)"
  exit 0
fi
command -v python3 >/dev/null || { echo "missing python3"; exit 1; }
b="$source_dir/bench"
start=$SECONDS

# Whatever a script prints must never contain these (bash's own error lines
# read "/path/script.sh: line N: ...").
leaks='Traceback|unbound variable|: line [0-9]+: |No such file|Killed'

# run_cmd ARGS...: runs ARGS; sets rc, and out/err (also in $tmp/out, $tmp/err).
run_cmd() {
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  set -e
  out=$(<"$tmp/out")
  err=$(<"$tmp/err")
}

# fails_with DESCRIPTION CODE PATTERN COMMAND...: COMMAND exits CODE with
# exactly one line on stderr that starts with the script's name (no path:
# bash's messages start with the path), matches PATTERN (ERE) and holds
# nothing of $leaks. Set `leaks=` to allow a pattern on one call.
fails_with() {
  local what=$1 code=$2 pattern=$3 name="" arg
  shift 3
  for arg in "$@"; do
    [[ $arg == *.sh || $arg == *.py ]] && { name=$(basename "$arg"); break; }
  done
  run_cmd "$@"
  checks=$((checks + 1))
  if [[ $rc -ne $code ]]; then
    fail "$what: exit $rc, want $code; stderr: $err"
  elif [[ $(wc -l <"$tmp/err") -ne 1 || $(wc -c <"$tmp/err") -le 1 ]]; then
    fail "$what: stderr is not exactly one line: $err"
  elif [[ $err != "$name: "* ]]; then
    fail "$what: stderr does not start with '$name: ': $err"
  elif ! grep -Eq -- "$pattern" <<<"$err"; then
    fail "$what: stderr does not match /$pattern/: $err"
  elif [[ -n $leaks ]] && grep -Eq -- "$leaks" "$tmp/err" "$tmp/out"; then
    fail "$what: output holds /$leaks/: $err"
  else
    pass "$what"
  fi
}

# helps DESCRIPTION PATTERN COMMAND...: COMMAND exits 0 with a short usage
# text (under 40 lines, matching PATTERN) on stdout and nothing on stderr.
helps() {
  local what=$1 pattern=$2
  shift 2
  run_cmd "$@"
  checks=$((checks + 1))
  if [[ $rc -ne 0 || -n $err ]]; then
    fail "$what: exit $rc, stderr: $err"
  elif [[ $(wc -l <"$tmp/out") -ge 40 ]] || ! grep -Eq -- "$pattern" "$tmp/out"; then
    fail "$what: stdout is not a usage text matching /$pattern/: $out"
  else
    pass "$what"
  fi
}

# reports DESCRIPTION CODE PATTERN... -- COMMAND...: COMMAND exits CODE with
# at most 5 lines on stderr that match every PATTERN, and no $leaks.
reports() {
  local what=$1 code=$2 patterns=() p missing=""
  shift 2
  while [[ $1 != -- ]]; do patterns+=("$1"); shift; done
  shift
  run_cmd "$@"
  for p in "${patterns[@]}"; do grep -Eq -- "$p" "$tmp/err" || missing+=" /$p/"; done
  checks=$((checks + 1))
  if [[ $rc -ne $code ]]; then
    fail "$what: exit $rc, want $code; stderr: $err"
  elif [[ -n $missing ]]; then
    fail "$what: stderr does not match$missing: $err"
  elif [[ $(wc -l <"$tmp/err") -gt 5 ]]; then
    fail "$what: more than 5 lines on stderr: $err"
  elif grep -Eq -- "$leaks" "$tmp/err"; then
    fail "$what: stderr holds /$leaks/: $err"
  else
    pass "$what"
  fi
}

# Stand-ins: each prints "NAME: simulated failure" on stderr and exits 3
# (fakebin/openssl still answers `openssl version`).
mkdir -p "$tmp/fakebin" "$tmp/fakebuild/bench"
for tool in db_bench openssl; do
  cat >"$tmp/fakebin/$tool" <<EOF
#!/usr/bin/env bash
[[ \${1:-} == version || \${1:-} == --version ]] && { echo "$tool 0.0 (stand-in)"; exit 0; }
echo "$tool: simulated failure" >&2
exit 3
EOF
done
for tool in coffer bench/coffer-bench bench/micro_bench bench/tenant_scale \
  bench/replication-bench; do
  printf '#!/bin/sh\necho "%s: simulated failure" >&2\nexit 3\n' "$tool" \
    >"$tmp/fakebuild/$tool"
done
: >"$tmp/fakebuild/libcoffer_rocksdb.so"
chmod +x "$tmp/fakebin"/* "$tmp/fakebuild/coffer" "$tmp/fakebuild/bench"/*
# fake-coffer: the real coffer, but `coffer $FAKE_FAIL ...` fails at once.
cat >"$tmp/fake-coffer" <<EOF
#!/usr/bin/env bash
if [[ \$1 == "\${FAKE_FAIL:-}" ]]; then echo "coffer \$1: simulated failure" >&2; exit 3; fi
exec "$coffer" "\$@"
EOF
chmod +x "$tmp/fake-coffer"
fake_path="$tmp/fakebin:$PATH"

# ---- db_bench_compare.sh -----------------------------------------------------
d="$b/db_bench_compare.sh"
helps "db_bench_compare.sh --help prints the whole header, Usage and --dir included" \
  '^Usage: bash bench/db_bench_compare.sh BUILD_DIR .*--num N' bash "$d" --help
check "  and the usage names --dir" grep -q -- '--dir DIR' "$tmp/out"
helps "db_bench_compare.sh BUILD_DIR --help" '^Usage:' bash "$d" "$build" --help
fails_with "db_bench_compare.sh without BUILD_DIR" 2 'usage' bash "$d"
fails_with "db_bench_compare.sh --num abc" 2 "--num must be a positive integer, not 'abc'" \
  bash "$d" "$build" --num abc
fails_with "db_bench_compare.sh --rounds abc" 2 "--rounds .*'abc'" bash "$d" "$build" --rounds abc
fails_with "db_bench_compare.sh --rounds without a value" 2 '--rounds needs a value' \
  bash "$d" "$build" --rounds
fails_with "db_bench_compare.sh --rounds 0" 2 "--rounds .*'0'" bash "$d" "$build" --rounds 0
fails_with "db_bench_compare.sh --threads 0" 2 "--threads .*'0'" bash "$d" "$build" --threads 0
fails_with "db_bench_compare.sh --value-size -1" 2 "--value-size .*'-1'" \
  bash "$d" "$build" --value-size -1
fails_with "db_bench_compare.sh --cache-size 8MiB" 2 "--cache-size .*'8MiB'" \
  bash "$d" "$build" --cache-size 8MiB
fails_with "db_bench_compare.sh --dir to a missing directory" 2 "--dir $tmp/nowhere" \
  bash "$d" "$build" --dir "$tmp/nowhere"
fails_with "db_bench_compare.sh --bogus" 2 "unknown option '--bogus'" bash "$d" "$build" --bogus
fails_with "db_bench_compare.sh with a build lacking coffer" 1 "missing $tmp/coffer" \
  env PATH="$fake_path" bash "$d" "$tmp" --rounds 1
reports "db_bench_compare.sh shows a failing db_bench's error" 1 \
  '^db_bench_compare.sh: db_bench \(plain, fillrandom,compact\) failed:$' \
  '^db_bench: simulated failure$' -- \
  env PATH="$fake_path" bash "$d" "$build" --rounds 1 --num 500 --dir "$tmp"
# A db_bench that measures nothing (0 ops/sec): no ratio, said so, exit 1.
mkdir -p "$tmp/zerobin"
cat >"$tmp/zerobin/db_bench" <<'EOF'
#!/usr/bin/env bash
[[ ${1:-} == --version ]] && { echo "db_bench 0.0 (stand-in)"; exit 0; }
for a in "$@"; do
  case $a in --benchmarks=*) IFS=, read -r -a bs <<<"${a#--benchmarks=}" ;; esac
done
for b in "${bs[@]}"; do
  echo "$b   :       1.000 micros/op 0 ops/sec 0.001 seconds 0 operations;"
done
EOF
chmod +x "$tmp/zerobin/db_bench"
reports "db_bench_compare.sh when db_bench reports 0 ops/sec" 1 \
  '^db_bench_compare.sh: no ratio for fillrandom: plain db_bench reported 0 ops/sec' \
  '^db_bench_compare.sh: no ratio for readrandom: ' -- \
  env PATH="$tmp/zerobin:$PATH" bash "$d" "$build" --rounds 1 --num 500 --dir "$tmp"
if command -v db_bench >/dev/null; then
  run_cmd bash "$d" "$build" --rounds 1 --num 500 --dir "$tmp"
  check "db_bench_compare.sh --rounds 1 --num 500 runs" test "$rc" -eq 0
  for w in fillrandom readrandom; do
    check "  and prints the $w ratio" \
      grep -qE "^ratio coffer/plain $w +: median [0-9]+\.[0-9]{3}" "$tmp/out"
  done
  check "  and removes its scratch directory" \
    bash -c "! ls -d '$tmp'/db-bench-compare-* 2>/dev/null"
else
  echo "db_bench missing: its happy path is not run"
fi

# ---- openssl_speed_compare.sh ------------------------------------------------
o="$b/openssl_speed_compare.sh"
helps "openssl_speed_compare.sh --help" '^Usage: bash bench/openssl_speed_compare.sh BUILD_DIR' \
  bash "$o" --help
fails_with "openssl_speed_compare.sh --bytes 1000 names the sizes micro_bench has" 2 \
  'micro_bench ran no BM_CtrCipherStream benchmark of that size.*16384' \
  bash "$o" "$build" --bytes 1000 --rounds 1 --seconds 1
fails_with "openssl_speed_compare.sh --rounds 0" 2 "--rounds .*'0'" bash "$o" "$build" --rounds 0
fails_with "openssl_speed_compare.sh --seconds 0.5" 2 "--seconds .*'0\.5'" \
  bash "$o" "$build" --seconds 0.5
fails_with "openssl_speed_compare.sh --seconds abc" 2 "--seconds .*'abc'" \
  bash "$o" "$build" --seconds abc
fails_with "openssl_speed_compare.sh --seconds without a value" 2 '--seconds needs a value' \
  bash "$o" "$build" --seconds
fails_with "openssl_speed_compare.sh --bytes x" 2 "--bytes .*'x'" bash "$o" "$build" --bytes x
fails_with "openssl_speed_compare.sh --bogus" 2 "unknown option '--bogus'" bash "$o" "$build" --bogus
fails_with "openssl_speed_compare.sh with a build lacking micro_bench" 1 \
  "missing $tmp/bench/micro_bench" bash "$o" "$tmp"
reports "openssl_speed_compare.sh shows a failing openssl's error" 1 \
  '^openssl_speed_compare.sh: openssl speed .* failed:$' '^openssl: simulated failure$' -- \
  env PATH="$fake_path" bash "$o" "$build" --rounds 1 --seconds 1

# ---- plot_ratios.py -------------------------------------------------------------
p="$b/plot_ratios.py"
helps "plot_ratios.py --help" '^Usage: python3 bench/plot_ratios.py OUT.svg' python3 "$p" --help
fails_with "plot_ratios.py without inputs" 2 '^plot_ratios.py: usage: ' python3 "$p" "$tmp/x.svg"
leaks='Traceback' fails_with "plot_ratios.py on a missing file" 1 \
  "cannot read $tmp/missing.json: No such file or directory" \
  python3 "$p" "$tmp/x.svg" "$tmp/missing.json"
echo '{"options": ' >"$tmp/broken.json"
fails_with "plot_ratios.py on non-JSON input" 1 "cannot read $tmp/broken.json: not JSON" \
  python3 "$p" "$tmp/x.svg" "$tmp/broken.json"
echo '{"runs": []}' >"$tmp/other.json"
fails_with "plot_ratios.py on JSON that is not coffer-bench's" 1 \
  "cannot read $tmp/other.json: not a coffer-bench --json document" \
  python3 "$p" "$tmp/x.svg" "$tmp/other.json"
check "  and writes no chart" test ! -e "$tmp/x.svg"
leaks='Traceback' fails_with "plot_ratios.py into a missing directory" 1 \
  "cannot write $tmp/nowhere/x.svg: No such file or directory" \
  python3 "$p" "$tmp/nowhere/x.svg" "$b/results/none-vs-coffer-v100-t1.json"
run_cmd python3 "$p" "$tmp/chart.svg" "$b"/results/*-vs-coffer-*.json
check "plot_ratios.py on bench/results/ runs" test "$rc" -eq 0 -a -z "$err"
check "  and prints a table row per ratio" \
  test "$(grep -cE '^\| (fillrandom|readrandom) \| ' "$tmp/out")" -eq 16
check "  and writes an SVG that parses" python3 -c '
import sys, xml.etree.ElementTree as ET
assert ET.parse(sys.argv[1]).getroot().tag.endswith("svg")' "$tmp/chart.svg"
# A reader that goes away (`| head`, here `| true`) is not an error.
check "plot_ratios.py into a closed pipe: exit 0, nothing on stderr" bash -c '
python3 "$1" "$2/pipe.svg" "${@:3}" 2>"$2/pipe.err" | true
[[ ${PIPESTATUS[0]} -eq 0 && ! -s $2/pipe.err ]]' _ "$p" "$tmp" \
  "$b"/results/*-vs-coffer-*.json

# ---- promotion_time.sh ----------------------------------------------------------
t="$b/promotion_time.sh"
helps "promotion_time.sh --help" 'promotion_time.sh \[COFFER\] \[N\.\.\.\]' bash "$t" --help
helps "promotion_time.sh -h" 'promotion_time.sh \[COFFER\] \[N\.\.\.\]' bash "$t" -h
fails_with "promotion_time.sh with a count of abc" 2 "count .*'abc'" bash "$t" "$coffer" 1 abc
fails_with "promotion_time.sh with a count of 0" 2 "count .*'0'" bash "$t" "$coffer" 0
fails_with "promotion_time.sh --bogus" 2 "unknown option '--bogus'" bash "$t" --bogus
fails_with "promotion_time.sh with a missing coffer" 1 "no coffer binary at $tmp/nocoffer" \
  bash "$t" "$tmp/nocoffer" 1
fails_with "promotion_time.sh when the replica daemon dies" 1 \
  'coffer replica serve did not start .*exited; last line of its log: coffer replica: simulated failure' \
  env FAKE_FAIL=replica bash "$t" "$tmp/fake-coffer" 1
fails_with "promotion_time.sh when the workload dies" 1 \
  'coffer workload did not get .*exited; last line of its log: coffer workload: simulated failure' \
  env FAKE_FAIL=workload bash "$t" "$tmp/fake-coffer" 1
run_cmd bash "$t" "$coffer" 1
check "promotion_time.sh with 1 tenant runs" test "$rc" -eq 0 -a -z "$err"
for mode in daemon offline; do
  check "  and times the $mode promotion" \
    grep -qE "^ +1 tenants  $mode +coffer promote: +[0-9]+ ms wall .*via $mode\)$" "$tmp/out"
done

# ---- run_figures.sh ---------------------------------------------------------------
f="$b/run_figures.sh"
helps "run_figures.sh --help says what it runs" \
  'Not run: the pinned replica-process column' bash "$f" --help
fails_with "run_figures.sh without arguments" 2 'usage' bash "$f"
fails_with "run_figures.sh with a missing BUILD_DIR" 1 "$tmp/nobuild has no coffer" \
  bash "$f" "$tmp/nobuild" "$tmp/figures"
mkdir -p "$tmp/partial"
ln -s "$coffer" "$tmp/partial/coffer"
fails_with "run_figures.sh with a BUILD_DIR without benchmarks" 1 \
  "$tmp/partial has no bench/coffer-bench" bash "$f" "$tmp/partial" "$tmp/figures"
check "  and starts no step" test ! -e "$tmp/figures"
reports "run_figures.sh shows a failing step on stderr" 1 \
  "^run_figures.sh: step 'coffer-bench none,coffer value 100 tenants 1' failed" \
  '^bench/coffer-bench: simulated failure$' -- bash "$f" "$tmp/fakebuild" "$tmp/figures"

echo "bench_scripts_test: $checks checks, $failures failed, $((SECONDS - start)) s"
[[ $failures -eq 0 ]]
