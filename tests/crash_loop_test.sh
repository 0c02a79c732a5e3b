#!/usr/bin/env bash
# Crash loop: a writer process (`coffer workload` with synced writes, an ack
# log, data-key rotations and rekeys, shipping to a running replica daemon)
# is killed with SIGKILL at a random moment, again and again; new tenants
# appear as the rounds go on, so some kills land while tenants are created.
# After every kill the primary is reopened and checked:
#   - the cluster opens and `coffer audit verify` passes;
#   - every tenant opens and holds every acknowledged write, exactly
#     (`coffer verify --expect-complete`);
#   - no tenant is left half-created or half-dropped (the tenant directories
#     are exactly the listed tenants);
#   - every data-key version a file's prefix names still exists
#     (`coffer key status`);
#   - no written value lies in plaintext under either data directory.
# Every few rounds, and at the end, a writer runs to completion and the
# replica must converge: caught up, then holding every acknowledged write.
#
# Runs for CRASH_LOOP_SECONDS (default 60) or --seconds N; prints a summary.
# With KEEP_TMP=1 the temporary directory is kept for inspection.
#
# Usage: bash tests/crash_loop_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
#        [--seconds N]
set -uo pipefail

coffer=${1:?usage: crash_loop_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR] [--seconds N]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
seconds=${CRASH_LOOP_SECONDS:-60}
if [[ ${4:-} == --seconds ]]; then seconds=${5:?--seconds needs a number}; fi
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# ---- setup -------------------------------------------------------------------

key=$tmp/keys/master.key
certs=$tmp/certs
primary=$tmp/primary
replica=$tmp/replica
ack=$tmp/ack.log
mkdir -p "$tmp/keys"
ok "keygen" keygen --out "$key"
((rc == 0)) || exit 1
bash "$src/tools/gen_test_certs.sh" "$certs" c1 c2 >/dev/null 2>&1 ||
  { echo "FAIL: cannot make test certificates" >&2; exit 1; }
ok "init primary" init --data "$primary" --key-file "$key" --cluster-id c1 \
  --region eu-west-1 --geography eu
((rc == 0)) || exit 1
ok "init replica" init --data "$replica" --key-file "$key" --cluster-id c2 \
  --region eu-central-1 --geography eu --replica
((rc == 0)) || exit 1
# A writer killed before it opens the ack log has acknowledged nothing; the
# empty log says so to `coffer verify`, which refuses a missing one.
: >"$ack"

# start_replica: runs `replica serve` on the replica in the background; sets
# rep_pid and rep_port.
start_replica() {
  local i
  rm -f "$tmp/replica.port"
  "$coffer" replica serve --data "$replica" --key-file "$key" \
    --listen "127.0.0.1:${rep_port:-0}" --tls-cert "$certs/c2.pem" \
    --tls-key "$certs/c2.key" --tls-ca "$certs/ca.pem" \
    --port-file "$tmp/replica.port" </dev/null >/dev/null \
    2>>"$tmp/replica.log" &
  rep_pid=$!
  started "$rep_pid"
  for ((i = 0; i < 300; i++)); do
    [[ -s $tmp/replica.port ]] && break
    alive "$rep_pid" || break
    sleep 0.05
  done
  if [[ ! -s $tmp/replica.port ]]; then
    fail "replica serve does not serve: $(tail -3 "$tmp/replica.log")"
    exit 1
  fi
  rep_port=$(cat "$tmp/replica.port")
}

# start_writer TENANTS ARGS...: runs the workload on the primary with TENANTS
# tenants, shipping to the replica, as fast as it can (or at $wl_rate writes
# per second); sets wl_pid and wl_err.
writer_runs=0
start_writer() {
  local tenants=$1
  shift
  writer_runs=$((writer_runs + 1))
  wl_err=$tmp/writer.$writer_runs.err
  "$coffer" workload --data "$primary" --key-file "$key" --ack-log "$ack" \
    --tenants "$tenants" --tenant-prefix cl --rate "${wl_rate:-0}" \
    --duration 0 --sync \
    --value-size 300 --replicate-to "127.0.0.1:$rep_port" \
    --tls-cert "$certs/c1.pem" --tls-key "$certs/c1.key" \
    --tls-ca "$certs/ca.pem" "$@" </dev/null >/dev/null 2>"$wl_err" &
  wl_pid=$!
  started "$wl_pid"
}

# in_rotation FILE: the last rotation line of a writer's stderr says started
# (a rotation or rekey was under way); prints "rekey" or "rotation".
in_rotation() {
  local last
  last=$(grep -E "^workload: (rotation|rekey) of tenant" "$1" | tail -1)
  [[ $last == *": started" ]] || return 1
  [[ $last == "workload: rekey"* ]] && echo rekey || echo rotation
}

# check_primary: the invariants after a kill (see the top of this file).
check_primary() {
  local what=$1
  ok "$what: audit verify" audit verify --data "$primary" --key-file "$key"
  ((rc == 0)) || return
  ok "$what: every acknowledged write present" verify --data "$primary" \
    --key-file "$key" --ack-log "$ack" --expect-complete --json
  if ((rc == 0)); then
    verified=$((verified + $(python3 -c \
      'import json,sys; print(json.load(open(sys.argv[1]))["present"])' \
      "$tmp/out")))
  else
    head -20 "$tmp/out" >&2
  fi
  ok "$what: tenant list" tenant list --data "$primary" --key-file "$key" \
    --json
  ((rc == 0)) || return
  cp "$tmp/out" "$tmp/tenants.json"
  ok "$what: key status" key status --data "$primary" --key-file "$key" \
    --json
  ((rc == 0)) || return
  cp "$tmp/out" "$tmp/keys.json"
  python3 - "$primary" "$tmp/tenants.json" "$tmp/keys.json" <<'PY' ||
import json, os, struct, sys
data, tenants_json, keys_json = sys.argv[1:4]
listed = json.load(open(tenants_json))
listed = listed["tenants"] if isinstance(listed, dict) else listed
listed = sorted(t["id"] if isinstance(t, dict) else t for t in listed)
dirs = sorted(os.listdir(os.path.join(data, "tenants")))
problems = []
if dirs != listed:
    problems.append(f"tenant directories {dirs} but tenants {listed}")
keys = {k["tenant"]: {v["version"] for v in k["versions"]}
        for k in json.load(open(keys_json))["tenants"]}
for t in dirs:
    db = os.path.join(data, "tenants", t, "db")
    for root, _, files in os.walk(db):
        for name in files:
            path = os.path.join(root, name)
            try:
                head = open(path, "rb").read(16)
            except FileNotFoundError:
                continue
            if len(head) < 16 or head[:8] != b"CofferF\x01":
                continue  # LOCK, or a file a crash left empty
            version = struct.unpack("<I", head[12:16])[0]
            if version not in keys.get(t, set()):
                problems.append(f"{path} uses data-key version {version}, "
                                f"which tenant {t} no longer has "
                                f"({sorted(keys.get(t, set()))})")
if problems:
    sys.exit("; ".join(problems[:5]))
PY
    fail "$what: tenants and key versions inconsistent"
  no_plaintext "$what" "$primary"
}

# no_plaintext WHAT DIR: no file under DIR holds a value header
# "<tenant>|<n>|" of any tenant (every value starts with one).
no_plaintext() {
  python3 - "$2" <<'PY' || fail "$1: plaintext under $2"
import os, re, sys
pattern = re.compile(rb"cl-\d{3}\|\d+\|300\|")
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue  # admin.sock
        try:
            data = open(path, "rb").read()
        except FileNotFoundError:
            continue
        if pattern.search(data):
            sys.exit(f"{path} holds a value in plaintext")
PY
}

# caught_up_since MICROS SECONDS: succeeds once the primary's status, written
# after MICROS, says every tenant is caught up; fails after SECONDS. The last
# status read is left in $tmp/status.json.
caught_up_since() {
  local since=$1 deadline=$((SECONDS + $2)) left
  while ((SECONDS < deadline)); do
    left=$((deadline - SECONDS))
    ((left > 2)) && left=2
    if "$coffer" replication status --data "$primary" --json \
      --wait-caught-up "$left" >"$tmp/status.json" 2>/dev/null &&
      python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["as_of_unix_micros"] < int(sys.argv[2]))' \
        "$tmp/status.json" "$since"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# converge: runs a writer to the end, waits until the replica has caught up
# with it, and checks that the replica holds every acknowledged write.
converge() {
  local what=$1 since
  # A rate the replica keeps up with on a busy machine.
  wl_rate=200 start_writer "$tenants" --rotate-every 300 --rekey-every 3
  since=$(now_micros)
  sleep 1
  local caught=0
  caught_up_since "$since" 30 && caught=1
  # Writes made after the status said caught up may not have shipped: stop
  # the writer, then let a session that writes nothing ship the rest.
  kill -TERM "$wl_pid" 2>/dev/null
  reap "$wl_pid" 20
  if ((caught == 0)); then
    fail "$what: the replica did not catch up within 30 s: $(cat "$tmp/status.json" 2>/dev/null | head -c 600)"
    return
  fi
  [[ $reap_rc -eq 0 ]] || fail "$what: the writer exited $reap_rc on SIGTERM: $(tail -3 "$wl_err")"
  "$coffer" tenant create --data "$primary" --key-file "$key" drain-000 \
    --quota 1 >/dev/null 2>&1
  wl_err=$tmp/drain.err
  "$coffer" workload --data "$primary" --key-file "$key" \
    --ack-log "$tmp/drain.ack" --tenants 1 --tenant-prefix drain --rate 10 \
    --duration 0 --replicate-to "127.0.0.1:$rep_port" \
    --tls-cert "$certs/c1.pem" --tls-key "$certs/c1.key" \
    --tls-ca "$certs/ca.pem" </dev/null >/dev/null 2>"$wl_err" &
  wl_pid=$!
  started "$wl_pid"
  since=$(now_micros)
  caught=0
  caught_up_since "$since" 30 && caught=1
  kill -TERM "$wl_pid" 2>/dev/null
  reap "$wl_pid" 20
  ((caught == 1)) || { fail "$what: the drain did not catch up"; return; }
  # The replica daemon holds its directory: stop it to verify, then restart.
  kill -TERM "$rep_pid" 2>/dev/null
  reap "$rep_pid" 20
  ok "$what: the replica holds every acknowledged write" verify \
    --data "$replica" --key-file "$key" --ack-log "$ack" --expect-complete \
    --json
  if ((rc == 0)); then
    converged=$((converged + 1))
  else
    head -20 "$tmp/out" >&2
  fi
  ok "$what: replica audit verify" audit verify --data "$replica" \
    --key-file "$key"
  no_plaintext "$what" "$replica"
  start_replica
}

# ---- the loop ----------------------------------------------------------------

start_replica
rounds=0 kills=0 kills_rotation=0 kills_rekey=0 kills_startup=0 verified=0
converged=0 tenants=2
end=$((SECONDS + seconds))
while ((SECONDS < end)); do
  rounds=$((rounds + 1))
  # A new tenant every third round, up to 8.
  ((rounds % 3 == 0 && tenants < 8)) && tenants=$((tenants + 1))
  mode=$((RANDOM % 4))
  if ((rounds == 1)); then
    # The first kill always lands at once: during the process start or the
    # cluster's open, before the ack log is opened.
    mode=0 delay_ms=0
  elif ((mode == 0)); then
    # Early: the open, tenant creation, the first writes.
    delay_ms=$((RANDOM % 400))
  else
    delay_ms=$((200 + RANDOM % 2500))
  fi
  start_writer "$tenants" --rotate-every $((50 + RANDOM % 200)) \
    --rekey-every $((1 + RANDOM % 3))
  if ((mode == 3)); then
    # Aim at a rotation: kill as soon as one is under way after the delay.
    sleep "$(printf '0.%03d' $((delay_ms % 1000)))"
    for ((i = 0; i < 400; i++)); do
      in_rotation "$wl_err" >/dev/null && break
      alive "$wl_pid" || break
      sleep 0.005
    done
  else
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
  fi
  if ! alive "$wl_pid"; then
    reap "$wl_pid" 1
    fail "round $rounds: the writer died by itself (exit $reap_rc): $(tail -3 "$wl_err")"
    continue
  fi
  kind=$(in_rotation "$wl_err")
  { kill -9 "$wl_pid" && reap "$wl_pid" 10; } 2>/dev/null
  kills=$((kills + 1))
  case $kind in
    rotation) kills_rotation=$((kills_rotation + 1)) ;;
    rekey) kills_rekey=$((kills_rekey + 1)) ;;
  esac
  grep -q "^workload: \(rotation\|rekey\)" "$wl_err" ||
    kills_startup=$((kills_startup + 1))
  check_primary "round $rounds (killed after ${delay_ms} ms${kind:+, during a $kind})"
  if ((rounds % 8 == 0)); then converge "round $rounds"; fi
  ((failures > 0)) && break
done
((failures == 0)) && converge "final"

echo "crash loop: $rounds rounds in $SECONDS s, $kills kills ($kills_rotation during a key rotation, $kills_rekey during a rekey, $kills_startup before the first rotation), $tenants tenants, $verified acknowledged writes verified, $converged replica convergence checks, $failures failures"
((failures == 0))
