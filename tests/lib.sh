# Helpers shared by the shell tests (cli, workload, replication, failover,
# crash loop). Source it after setting `coffer` (the binary under test) and
# `tmp` (the test's own temporary directory, which this removes on exit
# unless KEEP_TMP is set).
#
# Every background process a test starts is registered with `started PID`,
# is waited for by PID, and is killed by PID on exit.

unset COFFER_DATA COFFER_KEY_FILE COFFER_KEY_DIR

checks=0
failures=0
bg_pids=" "  # background processes still to be waited for
# Results go to the test's own stdout and stderr even from a command whose
# output is redirected (`check ... >file`, or stderr silenced in `stop`).
exec 3>&2 4>&1

# alive PID: PID runs and is a child of this script (a PID of ours that the
# shell already reaped may since have been reused by an unrelated process).
alive() {
  local ppid_stat
  ppid_stat=$(ps -o ppid=,stat= -p "$1" 2>/dev/null) || return 1
  read -r -a ppid_stat <<<"$ppid_stat"
  [[ ${ppid_stat[0]} == "$$" && ${ppid_stat[1]} != Z* ]]
}

cleanup() {
  local pid
  for pid in $bg_pids; do
    alive "$pid" && { kill -CONT "$pid"; kill -9 "$pid"; } 2>/dev/null || true
  done
  for pid in $bg_pids; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: $*" >&4; }
fail() {
  echo "FAIL: $*" >&3
  failures=$((failures + 1))
}
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# run ARGS...: runs coffer (stdin from $stdin, default /dev/null); sets rc,
# and out/err to its stdout/stderr (also in $tmp/out and $tmp/err). Leaves
# the shell's errexit setting as it found it.
run() {
  local errexit=0
  [[ $- == *e* ]] && errexit=1
  set +e
  "$coffer" "$@" >"$tmp/out" 2>"$tmp/err" <"${stdin:-/dev/null}"
  rc=$?
  if ((errexit)); then set -e; fi
  out=$(tr -d '\0' <"$tmp/out")
  err=$(tr -d '\0' <"$tmp/err")
}

# ok DESCRIPTION ARGS...: coffer ARGS must exit 0 (a failure is counted, not
# returned: test $rc to act on it).
ok() {
  local what=$1
  shift
  run "$@"
  checks=$((checks + 1))
  if [[ $rc -eq 0 ]]; then pass "$what"; else fail "$what: exit $rc, stderr: $err"; fi
}

# fails DESCRIPTION CODE PATTERN ARGS...: coffer ARGS must exit CODE with
# exactly one line on stderr, matching PATTERN (extended regex).
fails() {
  local what=$1 code=$2 pattern=$3
  shift 3
  run "$@"
  checks=$((checks + 1))
  if [[ $rc -ne $code ]]; then
    fail "$what: exit $rc, want $code; stderr: $err"
  elif ! grep -Eq -- "$pattern" "$tmp/err"; then
    fail "$what: stderr does not match /$pattern/: $err"
  elif [[ $(wc -l <"$tmp/err") -ne 1 || $(wc -c <"$tmp/err") -le 1 ]]; then
    fail "$what: stderr is not exactly one line: $err"
  else
    pass "$what"
  fi
}

# json_check DESCRIPTION PYTHON_EXPR: $out must be JSON and PYTHON_EXPR,
# over the parsed value j, true.
json_check() {
  checks=$((checks + 1))
  if ! printf '%s' "$out" | python3 -m json.tool >/dev/null 2>&1; then
    fail "$1: not JSON: $out"
  elif ! printf '%s' "$out" |
    python3 -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($2) else 1)"; then
    fail "$1: $2 is false for $out"
  else
    pass "$1"
  fi
}

# json_file_check DESCRIPTION FILE PYTHON_EXPR: FILE must hold JSON and
# PYTHON_EXPR, over the parsed value j, be true.
json_file_check() {
  checks=$((checks + 1))
  if ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$2" \
    2>/dev/null; then
    fail "$1: not JSON: $(head -c 400 "$2")"
  elif ! python3 -c "import json, sys; j = json.load(open(sys.argv[1])); \
sys.exit(0 if ($3) else 1)" "$2"; then
    fail "$1: $3 is false for $(head -c 1500 "$2")"
  else
    pass "$1"
  fi
}

# count PATTERN FILE: prints how many lines of FILE match PATTERN (ERE).
count() {
  local n
  n=$(grep -cE -- "$1" "$2" 2>/dev/null) || true
  echo "${n:-0}"
}

# last_n ACK_LOG TENANT: the highest n of TENANT in ACK_LOG (0 if none).
last_n() {
  [[ -f $1 ]] || { echo 0; return; }
  awk -v t="$2" '$1 == t && $2 > m { m = $2 } END { print m + 0 }' "$1"
}

# expected_value TENANT N SIZE: the value workload writes, computed here from
# the formula documented in tools/workload_format.h, not by the tool.
expected_value() {
  python3 - "$@" <<'PY'
import sys
tenant, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mask = (1 << 64) - 1
header = f"{tenant}|{n}|{size}|".encode()
h = 0xcbf29ce484222325
for b in header:
    h = ((h ^ b) * 0x100000001b3) & mask
state, out = h, bytearray(header)
alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
while len(out) < size:
    state = (state + 0x9e3779b97f4a7c15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & mask
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & mask
    z ^= z >> 31
    for i in range(8):
        if len(out) < size:
            out.append(alphabet[(z >> (8 * i)) & 63])
sys.stdout.buffer.write(bytes(out))
PY
}

# no_file_contains DIR NEEDLE_FILE...: no file under DIR holds the bytes of
# any NEEDLE_FILE.
no_file_contains() {
  python3 - "$@" <<'PY'
import os, sys
needles = [open(p, "rb").read() for p in sys.argv[2:]]
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        data = open(os.path.join(root, name), "rb").read()
        for needle in needles:
            if needle in data:
                sys.exit(f"{os.path.join(root, name)} holds {needle[:40]!r}")
PY
}

now_micros() { date +%s%6N; }

# ---- background processes ------------------------------------------------------

started() { bg_pids="$bg_pids$1 "; }

# reap PID SECONDS: waits (without signalling) until PID exits and reaps it;
# sets reap_rc to its exit status. A process still running after SECONDS is
# a failure, and is then killed (reap_rc is then 137).
reap() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    fail "process $pid still runs after $2 s; killing it"
    kill -CONT "$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
  fi
  reap_rc=0
  wait "$pid" 2>/dev/null || reap_rc=$?
  bg_pids=${bg_pids/ $pid / }
}

# stop PID [SIGNAL]: sends SIGNAL (default TERM) and reaps PID within 15 s;
# sets stop_rc to its exit status.
stop() {
  {  # (without bash's notice of a job killed by a signal)
    alive "$1" && kill -"${2:-TERM}" "$1" || true
    reap "$1" 15
  } 2>/dev/null
  stop_rc=$reap_rc
}

# wait_file FILE PID SECONDS: waits until FILE exists while PID runs.
wait_file() {
  local file=$1 pid=$2 i
  for ((i = 0; i < $3 * 20; i++)); do
    [[ -s $file ]] && return 0
    alive "$pid" || return 1
    sleep 0.05
  done
  return 1
}
