#!/usr/bin/env bash
# End-to-end tests of replication with real processes: a primary (`coffer
# workload --replicate-to`) shipping to a passive replica (`coffer replica
# serve`) over mutually authenticated TLS 1.3. Covers convergence under load,
# killing either side, a link that is cut, truncated and corrupted (through
# tests/fault_proxy.py), refused peers, cross-geography refusal, a drop as a
# replicated crypto-shred, no plaintext on the replica, a read-only replica,
# a distant replica (added latency) and what the status says about tenants
# whose backlog has not been looked at yet.
#
# Every process runs in the background with its output in a temporary
# directory, is waited for by PID, and is killed by PID on exit.
#
# Usage: bash tests/replication_e2e_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
# With KEEP_TMP=1 the temporary directory is kept for inspection.
set -euo pipefail

coffer=${1:?usage: replication_e2e_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# as_of FILE: the as_of_unix_micros of the status JSON in FILE (0 if none).
as_of() {
  python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["as_of_unix_micros"])' "$1" 2>/dev/null ||
    echo 0
}

# ---- background processes ----------------------------------------------------

# wait_log FILE PATTERN SECONDS [N]: waits until at least N (default 1)
# lines of FILE match PATTERN.
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [[ $(count "$2" "$1") -ge ${4:-1} ]] && return 0
    sleep 0.1
  done
  return 1
}

# start_replica DIR CERT_NAME LOG [LISTEN]: runs `replica serve` on DIR in
# the background (stderr appended to LOG); sets rep_pid and rep_port.
start_replica() {
  local dir=$1 name=$2 log=$3 listen=${4:-127.0.0.1:0}
  rm -f "$tmp/replica.port"
  "$coffer" replica serve --data "$dir" --key-file "$key" --listen "$listen" \
    --tls-cert "$certs/$name.pem" --tls-key "$certs/$name.key" \
    --tls-ca "$certs/ca.pem" --port-file "$tmp/replica.port" \
    </dev/null >/dev/null 2>>"$log" &
  rep_pid=$!
  started "$rep_pid"
  rep_port=
  checks=$((checks + 1))
  if wait_file "$tmp/replica.port" "$rep_pid" 15; then
    rep_port=$(cat "$tmp/replica.port")
    pass "replica $name serves on $dir (port $rep_port)"
  else
    fail "replica $name does not serve on $dir: $(tail -3 "$log")"
  fi
}

# start_primary DIR CERT_NAME PORT ACK_LOG WORKLOAD_ARGS...: runs `coffer
# workload` on DIR shipping to 127.0.0.1:PORT with CERT_NAME's certificate;
# sets wl_pid, wl_started (unix µs), and wl_out/wl_err to its output files.
wl_runs=0
start_primary() {
  local dir=$1 name=$2 port=$3 ack=$4
  shift 4
  wl_runs=$((wl_runs + 1))
  wl_out=$tmp/workload.$wl_runs.out
  wl_err=$tmp/workload.$wl_runs.err
  wl_started=$(now_micros)
  "$coffer" workload --data "$dir" --key-file "$key" --ack-log "$ack" \
    --replicate-to "127.0.0.1:$port" --tls-cert "$certs/$name.pem" \
    --tls-key "$certs/$name.key" --tls-ca "$certs/ca.pem" --duration 0 "$@" \
    </dev/null >"$wl_out" 2>"$wl_err" &
  wl_pid=$!
  started "$wl_pid"
}

# load PORT: the main load on the primary: 4 tenants, 400 writes/s.
load() {
  start_primary "$primary" c1 "$1" "$ack" --tenants 4 --rate 400
}

# ---- replication status ------------------------------------------------------

# caught_up DIR SECONDS [SINCE]: waits until DIR's status, as of SINCE (unix
# µs) or later, says connected with every tenant caught up; gives up early
# once such a status says the process writing it stopped. The status is left
# in $tmp/status.json.
caught_up() {
  local dir=$1 since=${3:-0} deadline=$((SECONDS + $2)) left
  for (( ; ; )); do
    left=$((deadline - SECONDS))
    ((left < 0)) && left=0
    ((left > 2)) && left=2
    if "$coffer" replication status --data "$dir" --json \
      --wait-caught-up "$left" >"$tmp/status.json" 2>"$tmp/status.err"; then
      python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["as_of_unix_micros"] < int(sys.argv[2]))' \
        "$tmp/status.json" "$since" && return 0
    elif python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["connection"] == "stopped" and
         j["as_of_unix_micros"] >= int(sys.argv[2]) > 0 else 1)' \
      "$tmp/status.json" "$since" 2>/dev/null; then
      echo "caught_up $dir: the process writing its status stopped" >&2
      return 1
    fi
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# backlog_shipped DIR SECONDS: waits until the primary DIR says, connected,
# that the replica has acknowledged every write the primary had made when
# the wait began (a live workload keeps writing: its lag is rarely exactly
# 0). Leaves the status in $tmp/status.json.
backlog_shipped() {
  rm -f "$tmp/status.json"
  python3 - "$coffer" "$1" "$2" "$tmp/status.json" <<'PY'
import json, subprocess, sys, time
coffer, data, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
start, deadline = time.time() * 1e6, time.time() + seconds
target, j = None, None
while time.time() < deadline:
    p = subprocess.run([coffer, "replication", "status", "--data", data, "--json"],
                       capture_output=True, text=True)
    j = json.loads(p.stdout) if p.returncode == 0 else None
    if j and j["connection"] == "stopped":
        break  # the primary has been running: its process is gone
    if j and j["as_of_unix_micros"] >= start:
        if target is None:
            target = {t["tenant"]: t["primary_seq"] for t in j["tenants"]}
        elif j["connection"] == "connected" and all(
                t["applied_seq"] >= target.get(t["tenant"], 0) for t in j["tenants"]):
            open(out, "w").write(json.dumps(j))
            sys.exit(0)
    time.sleep(0.2)
print("backlog not shipped in %g s; wanted %s, last status %s" % (seconds, target, j),
      file=sys.stderr)
sys.exit(1)
PY
}

# settled DIR SECONDS SINCE: waits until DIR's status, as of SINCE (unix µs)
# or later, says connected with every tenant caught up but drain-000, which
# ship_all's session keeps writing to (once a second, in step with the
# status file, so it is often caught mid-write). Leaves the status in
# $tmp/status.json.
settled() {
  rm -f "$tmp/status.json"
  python3 - "$coffer" "$1" "$2" "$3" "$tmp/status.json" <<'PY'
import json, subprocess, sys, time
coffer, data, seconds, since, out = sys.argv[1:6]
deadline, j = time.time() + float(seconds), None
while time.time() < deadline:
    p = subprocess.run([coffer, "replication", "status", "--data", data, "--json"],
                       capture_output=True, text=True)
    j = json.loads(p.stdout) if p.returncode == 0 else None
    if j and j["as_of_unix_micros"] >= int(since):
        if j["connection"] == "stopped":
            break
        if j["connection"] == "connected" and all(
                t["state"] == "caught-up" for t in j["tenants"]
                if not t["tenant"].startswith("drain-")):
            open(out, "w").write(json.dumps(j))
            sys.exit(0)
    time.sleep(0.2)
print("%s not caught up in %s s; last status %s" % (data, seconds, j), file=sys.stderr)
sys.exit(1)
PY
}

# wait_status DIR SECONDS PYTHON_EXPR: waits until DIR's status JSON (j)
# makes PYTHON_EXPR true; leaves it in $tmp/status.json.
wait_status() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    if "$coffer" replication status --data "$1" --json >"$tmp/status.json" \
      2>/dev/null && python3 -c "import json, sys
j = json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" \
      "$tmp/status.json"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# ship_all PORT [COMPARE [HOOK]]: runs a primary session on the primary that writes
# only to tenant drain-000 (1/s), waits until it is caught up and stops it,
# so that the replica then holds every write of the other tenants. With
# COMPARE, also checks that the replica reports the primary's sequences, and
# then runs HOOK, if given, while still connected and caught up.
ship_all() {
  local since
  since=$(now_micros)
  start_primary "$primary" c1 "$1" "$tmp/drain.ack" --tenants 1 \
    --tenant-prefix drain --rate 1
  checks=$((checks + 1))
  if ! settled "$primary" 30 "$since"; then
    fail "a primary session ships everything (caught up within 30 s)"
  else
    pass "a primary session ships everything (caught up within 30 s)"
    if [[ -n ${2:-} ]]; then
      cp "$tmp/status.json" "$tmp/primary.json" || true
      check "the replica is caught up too" \
        settled "$replica" 15 "$(as_of "$tmp/primary.json")"
      cp "$tmp/status.json" "$tmp/replica.json" || true
      check "the replica has applied exactly the primary's sequences" \
        python3 - "$tmp/primary.json" "$tmp/replica.json" <<'PY'
import json, sys
p, r = (json.load(open(f)) for f in sys.argv[1:3])
ps = {t["tenant"]: t for t in p["tenants"] if not t["tenant"].startswith("drain-")}
rs = {t["tenant"]: t for t in r["tenants"] if not t["tenant"].startswith("drain-")}
bad = [(k, ps[k]["primary_seq"], rs.get(k, {}).get("applied_seq"))
       for k in ps if rs.get(k, {}).get("applied_seq") != ps[k]["primary_seq"]]
bad += [(k, None, rs[k]["applied_seq"]) for k in rs if k not in ps]
if bad:
    print("tenant, primary seq, replica applied seq:", bad, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    fi
  fi
  [[ -z ${3:-} ]] || "$3"
  stop "$wl_pid"
  check "the shipping session exits 0 on SIGTERM" test "$stop_rc" = 0
}

# verify_both WHAT: stops nothing; runs verify --json on the replica and the
# primary with the main ack log and checks the replica holds exactly what the
# primary holds: every acknowledged write, right values, no holes.
verify_both() {
  run verify --data "$replica" --key-file "$key" --ack-log "$ack" --json \
    --expect-complete
  cp "$tmp/out" "$tmp/verify.replica.json"
  checks=$((checks + 1))
  if [[ $rc -eq 0 ]]; then
    pass "$1: verify --expect-complete on the replica"
  else
    fail "$1: verify --expect-complete on the replica: exit $rc: $err $(head -c 600 "$tmp/out")"
  fi
  json_file_check "$1: the replica has every acked write, right values, no holes" \
    "$tmp/verify.replica.json" \
    'j["ok"] and j["missing"] == j["wrong_values"] == j["holes"] == 0 and
     j["present"] == j["acked"] > 0'
  ok "$1: verify on the primary" verify --data "$primary" --key-file "$key" \
    --ack-log "$ack" --json --expect-complete
  cp "$tmp/out" "$tmp/verify.primary.json"
  check "$1: the replica holds exactly the primary's records" \
    python3 - "$tmp/verify.primary.json" "$tmp/verify.replica.json" <<'PY'
import json, sys
p, r = (json.load(open(f)) for f in sys.argv[1:3])
keys = ("acked", "present", "missing", "extra", "wrong_values", "holes")
pt = {t["tenant"]: [t[k] for k in keys] for t in p["tenants"]}
rt = {t["tenant"]: [t[k] for k in keys] for t in r["tenants"]}
if pt != rt:
    print("primary", pt, "replica", rt, file=sys.stderr)
sys.exit(0 if pt == rt else 1)
PY
}

# metrics_zero DIR: DIR's metrics show lag 0 for every workload tenant (the
# status file is rewritten every second: a few rewrites are allowed for).
metrics_zero() {
  local i
  for i in 1 2 3 4 5; do
    if "$coffer" metrics --data "$1" >"$tmp/metrics" 2>&1 &&
      [[ $(count '^coffer_replication_lag_seqs\{.*tenant="wl-00[0-3]"\} 0$' "$tmp/metrics") -eq 4 &&
        $(count '^coffer_replication_lag_seqs\{.*tenant="wl-' "$tmp/metrics") -eq 4 &&
        $(count '^coffer_replication_lag_seconds\{.*tenant="wl-00[0-3]"\} 0\.000$' \
          "$tmp/metrics") -eq 4 ]]; then
      return 0
    fi
    sleep 0.4
  done
  cat "$tmp/metrics" >&2
  return 1
}
check_metrics() {
  check "metrics on the primary: lag 0 for every tenant" \
    metrics_zero "$primary"
  check "metrics on the primary name the cluster and role" grep -Eq \
    '^coffer_replication_lag_seqs\{cluster="c1",role="primary",tenant="wl-000"\} 0$' \
    "$tmp/metrics"
  check "metrics on the replica: lag 0 for every tenant" \
    metrics_zero "$replica"
  check "metrics on the replica name the cluster and role" grep -Eq \
    '^coffer_replication_lag_seqs\{cluster="c2",role="replica",tenant="wl-000"\} 0$' \
    "$tmp/metrics"
}

# ---- setup -------------------------------------------------------------------

key=$tmp/keys/master.key
certs=$tmp/certs
primary=$tmp/primary
replica=$tmp/replica
ack=$tmp/workload.ack
rlog=$tmp/replica.log
mkdir -p "$tmp/keys"
ok "keygen" keygen --out "$key"
check "test certificates for c1, c2, c3, c4" \
  bash "$src/tools/gen_test_certs.sh" "$certs" c1 c2 c3 c4
check "a rogue CA's certificate for c1" \
  bash "$src/tools/gen_test_certs.sh" "$tmp/rogue" c1
ok "init the primary c1" init --data "$primary" --key-file "$key" \
  --cluster-id c1 --region eu-west-1 --geography eu
ok "init the replica c2" init --data "$replica" --key-file "$key" \
  --cluster-id c2 --region eu-central-1 --geography eu --replica

# Bad waits: nan passed as "caught up", 1e10 overflowed into no wait at all.
for bad in nan inf -1 1e10 abc; do
  fails "replication status --wait-caught-up $bad" 2 \
    "--wait-caught-up: '$bad' is not a number of seconds from 0 to 1000000" \
    replication status --data "$replica" --wait-caught-up "$bad"
done
# The port file is what a supervisor waits for: failing to write it is fatal
# (it was ignored, and a stray PORT_FILE.tmp left behind).
mkdir "$tmp/port-dir"
fails "replica serve with a directory as its --port-file" 1 \
  "cannot write the port file $tmp/port-dir" \
  replica serve --data "$replica" --key-file "$key" --listen 127.0.0.1:0 \
  --tls-cert "$certs/c2.pem" --tls-key "$certs/c2.key" \
  --tls-ca "$certs/ca.pem" --port-file "$tmp/port-dir"
check "and leaves no temporary file" test ! -e "$tmp/port-dir.tmp"

# caught_up_expr ROLE PEER: json_file_check's test of a caught-up status of ROLE,
# connected to PEER, with the 4 workload tenants at lag 0.
caught_up_expr() {
  echo "j['role'] == '$1' and j['connection'] == 'connected' and
  j['peer_cluster_id'] == '$2' and j['caught_up'] and
  [t['tenant'] for t in j['tenants']] == ['wl-000', 'wl-001', 'wl-002', 'wl-003'] and
  all(t['lag_seqs'] == 0 and t['lag_seconds'] == 0 and t['state'] == 'caught-up' and
      t['applied_seq'] == t['primary_seq'] > 0 for t in j['tenants'])"
}

# ---- 1. convergence under load -----------------------------------------------
echo "--- 1. convergence under load (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog"
port=$rep_port
load "$port"
sleep 2
check "under load the replica acknowledges the primary's writes (within 20 s)" \
  backlog_shipped "$primary" 20
json_file_check "... keeping up: lag below 1 s for every tenant" "$tmp/status.json" \
  'len(j["tenants"]) == 4 and all(t["lag_seconds"] < 1 for t in j["tenants"])'
check "the primary reports caught up under load (within 20 s)" \
  caught_up "$primary" 20 "$wl_started"
cp "$tmp/status.json" "$tmp/primary.json" || true
json_file_check "the primary's status: caught up, 4 tenants, lag 0" \
  "$tmp/primary.json" "$(caught_up_expr primary c2)"
check "the primary's lag_seconds print as 0.000" \
  test "$(grep -o '"lag_seconds":0.000,' "$tmp/primary.json" | wc -l)" = 4
check "the replica catches up under load (within 20 s)" \
  caught_up "$replica" 20 "$(as_of "$tmp/primary.json")"
cp "$tmp/status.json" "$tmp/replica.json" || true
json_file_check "the replica's status: caught up, 4 tenants, lag 0" \
  "$tmp/replica.json" "$(caught_up_expr replica c1)"
check "the replica's lag_seconds print as 0.000" \
  test "$(grep -o '"lag_seconds":0.000,' "$tmp/replica.json" | wc -l)" = 4
check "the replica has applied at least what the primary saw acknowledged" \
  python3 -c 'import json, sys
p, r = (json.load(open(f)) for f in sys.argv[1:3])
ra = {t["tenant"]: t["applied_seq"] for t in r["tenants"]}
sys.exit(0 if all(ra.get(t["tenant"], -1) >= t["applied_seq"] for t in p["tenants"]) else 1)' \
  "$tmp/primary.json" "$tmp/replica.json"
stop "$wl_pid"
check "the workload exits 0 on SIGTERM" test "$stop_rc" = 0
check "the workload acknowledged writes to all 4 tenants" \
  test "$(cut -d' ' -f1 "$ack" | sort -u | wc -l)" = 4
ship_all "$port" compare check_metrics
stop "$rep_pid"
check "the replica exits 0 on SIGTERM" test "$stop_rc" = 0
check "the replica logs its stop" grep -q "stopping on SIGTERM" "$rlog"
verify_both "under load"

# ---- 2. replica killed mid-stream --------------------------------------------
echo "--- 2. replica killed mid-stream (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
load "$port"
sleep 1.5
stop "$rep_pid" KILL
sleep 2
check "while the replica is down the primary reports it not connected and lagging" \
  wait_status "$primary" 5 \
  'j["connection"] != "connected" and
   any(t["lag_seqs"] > 0 and t["state"] == "waiting" for t in j["tenants"])'
check "the workload keeps writing while the replica is down" alive "$wl_pid"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
check "the restarted replica listens on the same port" test "$rep_port" = "$port"
check "the primary reconnects and ships its backlog under load (within 20 s)" \
  backlog_shipped "$primary" 20
json_file_check "no reseed was needed: the primary resumed from the replica's position" \
  "$tmp/status.json" 'j["reseeds"] == 0 and j["connects"] >= 2'
stop "$wl_pid"
ship_all "$port" compare
stop "$rep_pid"
verify_both "replica killed"

# ---- 3. primary killed mid-stream --------------------------------------------
echo "--- 3. primary killed mid-stream (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
load "$port"
sleep 1.5
lines_before=$(wc -l <"$ack")
stop "$wl_pid" KILL
check "the killed workload had written" test "$lines_before" -gt 0
check "the primary's status says stopped once its process is gone" \
  wait_status "$primary" 3 'j["connection"] == "stopped"'
load "$port"
sleep 2
check "the restarted primary ships its backlog under load (within 20 s)" \
  backlog_shipped "$primary" 20
stop "$wl_pid"
check "the restarted workload continued the ack log" \
  grep -Eq "last n ([0-9]+) \(([0-9]+) this run\)" "$wl_out"
check "... after the killed run's writes" python3 -c 'import re, sys
runs = re.findall(r"last n (\d+) \((\d+) this run\)", open(sys.argv[1]).read())
sys.exit(0 if len(runs) == 4 and all(int(n) > int(k) for n, k in runs) else 1)' \
  "$wl_out"
ship_all "$port" compare
stop "$rep_pid"
verify_both "primary killed"

# ---- 4. connection cut, truncated, corrupted ---------------------------------
echo "--- 4. faulty link (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
plog=$tmp/proxy.log
ctl=$tmp/proxy.ctl
faults() {  # faults KEY=VALUE...: sets the proxy's faults atomically
  printf '%s\n' "$@" >"$ctl.tmp"
  mv "$ctl.tmp" "$ctl"
}
closes() { count "primary 'c1' closed|refused connection" "$rlog"; }
faults "truncate_after_bytes=5000"
python3 "$src/tests/fault_proxy.py" --listen 127.0.0.1:0 \
  --target "127.0.0.1:$port" --port-file "$tmp/proxy.port" \
  --control-file "$ctl" </dev/null >/dev/null 2>"$plog" &
proxy_pid=$!
started "$proxy_pid"
check "the fault proxy starts" wait_file "$tmp/proxy.port" "$proxy_pid" 10
proxy_port=$(cat "$tmp/proxy.port" 2>/dev/null || echo 0)
closed=$(closes)
load "$proxy_port"
check "the proxy truncated a connection mid-stream" \
  wait_log "$plog" "truncated connection [0-9]+ after 5000 bytes" 10
check "... and closed it" wait_log "$plog" "closed truncated connection" 5
check "the replica saw the truncated connection close" \
  wait_log "$rlog" "primary 'c1' closed|refused connection" 5 $((closed + 1))
check "the primary survives a truncated connection" alive "$wl_pid"
# Each phase needs a live primary; without one it would only time out.
if alive "$wl_pid"; then
  closed=$(closes)
  faults "corrupt_at_byte=2000"
  check "the proxy flipped a bit of a connection" \
    wait_log "$plog" "corrupted connection [0-9]+ byte 2000" 10
  check "the replica dropped the corrupted connection" \
    wait_log "$rlog" "primary 'c1' closed|refused connection" 5 $((closed + 1))
  check "the primary survives a corrupted connection" alive "$wl_pid"
fi
if alive "$wl_pid"; then
  closed=$(closes)
  faults "cut_every_ms=300"
  sleep 4
  faults "# no faults"
  check "the proxy cut the connection repeatedly" \
    test "$(count 'cut connection [0-9]+ \(cut_every_ms=300\)' "$plog")" -ge 2
  check "the replica saw the connections close" \
    test "$(closes)" -ge $((closed + 2))
  check "the primary survives the cut connections" alive "$wl_pid"
fi
if alive "$wl_pid"; then
  check "the primary reconnected after each fault" \
    wait_status "$primary" 3 'j["connects"] >= 4'
  check "the primary ships its backlog through the repaired link (within 30 s)" \
    backlog_shipped "$primary" 30
fi
stop "$wl_pid"
stop "$proxy_pid"
ship_all "$port" compare
stop "$rep_pid"
verify_both "faulty link"
ok "audit verify on the replica" audit verify --data "$replica" --key-file "$key"
ok "audit show on the replica" audit show --data "$replica" --key-file "$key"
cp "$tmp/out" "$tmp/audit.replica"
check "the replica's audit shows no batch that broke its chain or sequence" \
  test "$(count 'does not continue|starts at sequence|does not parse|claims [0-9]+ operations|outside the tenant' \
    "$tmp/audit.replica")" = 0
check "the replica's audit shows the reconnections" \
  test "$(count ' replication\.connect ' "$tmp/audit.replica")" -ge 2

# ---- 5. refused peers --------------------------------------------------------
echo "--- 5. refused peers (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
refused=$(count "refused" "$rlog")
refusals_since=$(date +%s)
set +e
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
  -CAfile "$certs/ca.pem" -ign_eof </dev/null >"$tmp/s_client" 2>&1
rc=$?
set -e
check "a client without a certificate is refused (s_client fails)" \
  test "$rc" -ne 0 -a "$rc" -ne 124
check "... with a 'certificate required' alert" \
  grep -q "alert certificate required" "$tmp/s_client"
check "... and the replica logs it refused" \
  wait_log "$rlog" "refused" 5 $((refused + 1))
refused=$(count "refused" "$rlog")
set +e
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
  -cert "$tmp/rogue/c1.pem" -key "$tmp/rogue/c1.key" \
  -CAfile "$tmp/rogue/ca.pem" -ign_eof </dev/null >"$tmp/s_client" 2>&1
rc=$?
set -e
check "a client with another CA's certificate is refused (s_client fails)" \
  test "$rc" -ne 0 -a "$rc" -ne 124
check "... with an 'unknown ca' alert" grep -q "alert unknown ca" "$tmp/s_client"
check "... and the replica logs it refused" \
  wait_log "$rlog" "refused" 5 $((refused + 1))
ok "init another primary, c3" init --data "$tmp/primary3" --key-file "$key" \
  --cluster-id c3 --region eu-west-1 --geography eu
start_primary "$tmp/primary3" c3 "$port" "$tmp/c3.ack" --tenants 1 --rate 10 \
  --tenant-prefix cthree
check "a valid primary of another cluster is refused: not the paired one" \
  wait_status "$tmp/primary3" 10 \
  'j["connection"] == "refused" and "paired" in j["last_error"] and j["batches"] == 0'
stop "$wl_pid"
check "... and the replica logs it refused" \
  grep -Eq "refused c3: .*paired with primary 'c1'" "$rlog"
stop "$rep_pid"
ok "audit show on the replica" audit show --data "$replica" --key-file "$key" \
  --since "$refusals_since"
cp "$tmp/out" "$tmp/audit.replica"
check "the audit lists the refused client without a certificate" \
  grep -Eq "replication\.refused +peer:127\.0\.0\.1 +PermissionDenied .*(no certificate|did not return a certificate)" \
  "$tmp/audit.replica"
check "the audit lists the refused rogue certificate" test "$(grep -E \
  "replication\.refused +peer:127\.0\.0\.1 +PermissionDenied .*TLS handshake failed" \
  "$tmp/audit.replica" | grep -Evc "no certificate|did not return a certificate")" -ge 1
check "the audit lists the refused primary c3" \
  grep -Eq "replication\.refused +peer:c3 +PermissionDenied .*paired" \
  "$tmp/audit.replica"
ok "tenant list on the replica" tenant list --data "$replica" --key-file "$key"
check "the refused primary's tenant is not on the replica" \
  test "$(count '^cthree-' "$tmp/out")" = 0 -a "$(count '^wl-' "$tmp/out")" = 4

# ---- 6. cross-geography ------------------------------------------------------
echo "--- 6. cross-geography (at ${SECONDS} s)"
ok "init a replica in geography us" init --data "$tmp/replica_us" \
  --key-file "$key" --cluster-id c4 --region us-east-1 --geography us --replica
start_replica "$tmp/replica_us" c4 "$tmp/replica_us.log"
start_primary "$primary" c1 "$rep_port" "$ack" --tenants 4 --rate 40
check "the eu primary is refused by the us replica (status says geography)" \
  wait_status "$primary" 10 \
  'j["connection"] == "refused" and "geography" in j["last_error"] and
   j["peer_address"].endswith(":'"$rep_port"'")'
stop "$wl_pid"
check "the us replica logs the refusal for geography" \
  grep -Eq "refused c1: .*geography 'eu'.*'us'" "$tmp/replica_us.log"
stop "$rep_pid"
ok "tenant list on the us replica" tenant list --data "$tmp/replica_us" \
  --key-file "$key"
check "the us replica holds no tenant" test -z "$out"
check "the us replica has no tenant directory" \
  test -z "$(ls -A "$tmp/replica_us/tenants" 2>/dev/null)"
ok "audit show on the us replica" audit show --data "$tmp/replica_us" \
  --key-file "$key"
check "the us replica audits the refusal" \
  grep -Eq "replication\.refused +peer:c1 .*geography" "$tmp/out"
check "the us replica never paired" \
  test "$(count 'replication\.pair' "$tmp/out")" = 0

# ---- 7-9. tenant records, plaintext, drop, read-only -------------------------
echo "--- 7. drop as crypto-shred, 8. no plaintext, 9. read-only replica (at ${SECONDS} s)"
p=(--data "$primary" --key-file "$key")
r=(--data "$replica" --key-file "$key")
secret=SECRETVALUE-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
skey=secretkey-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
ok "create tenant extra on the primary" tenant create "${p[@]}" extra
for i in 1 2 3; do
  ok "put extra/$i on the primary" put "${p[@]}" --tenant extra "k$i" "v$i"
done
ok "create tenant plain on the primary" tenant create "${p[@]}" plain
ok "put a distinctive value on the primary" put "${p[@]}" --tenant plain \
  "$skey" "$secret"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
ship_all "$port" compare
stop "$rep_pid"
ok "tenant list on the replica" tenant list "${r[@]}"
check "the replica lists tenant extra" grep -qx extra "$tmp/out"
check "the replica lists tenant plain" grep -qx plain "$tmp/out"
ok "get extra/k2 on the replica" get "${r[@]}" --tenant extra k2
check "the replica holds extra's value" test "$out" = v2
ok "get the distinctive value on the replica" get "${r[@]}" --tenant plain \
  "$skey"
check "the replica holds the distinctive value" test "$out" = "$secret"

# 8. The value and its key are nowhere in clear on the replica.
printf 'some text\n%s\n%s\n' "$skey" "$secret" >"$tmp/plaintext.control"
check "grep finds the value in a plaintext file (control)" \
  grep -rqaF -- "$secret" "$tmp/plaintext.control"
check "grep finds the key in a plaintext file (control)" \
  grep -rqaF -- "$skey" "$tmp/plaintext.control"
check "no file of the replica holds the value" \
  test -z "$(grep -rlaF -- "$secret" "$replica" || true)"
check "no file of the replica holds the key" \
  test -z "$(grep -rlaF -- "$skey" "$replica" || true)"
check "the replica's log holds neither the value nor the key" \
  test -z "$(grep -laF -e "$secret" -e "$skey" "$rlog" || true)"
check "no file of the primary holds the value or the key" \
  test -z "$(grep -rlaF -e "$secret" -e "$skey" "$primary" || true)"

# 9. Writes are refused on the replica.
fails "put on the replica is refused" 1 "ReadOnly" put "${r[@]}" \
  --tenant plain k v
fails "delete on the replica is refused" 1 "ReadOnly" delete "${r[@]}" \
  --tenant plain "$skey"
fails "tenant create on the replica is refused" 1 "ReadOnly" tenant create \
  "${r[@]}" newbie
ok "the refused delete left the value" get "${r[@]}" --tenant plain "$skey"
check "... unchanged" test "$out" = "$secret"

# 7. A drop on the primary is a crypto-shred on the replica too.
ok "drop tenant extra on the primary" tenant drop "${p[@]}" extra --yes
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
ship_all "$port"
check "the replica logs the replicated drop" \
  wait_log "$rlog" "tenant 'extra' dropped \(crypto-shred\)" 5
stop "$rep_pid"
ok "tenant list on the replica after the drop" tenant list "${r[@]}"
check "the replica no longer lists extra" test "$(count '^extra$' "$tmp/out")" = 0
check "the replica still lists plain" grep -qx plain "$tmp/out"
check "the replica's directory of extra is gone" test ! -e "$replica/tenants/extra"
fails "get from the dropped tenant on the replica" 1 NotFound \
  get "${r[@]}" --tenant extra k1
ok "audit show on the replica" audit show "${r[@]}"
check "the replica's audit has the replicated drop" \
  grep -Eq "tenant\.drop +tenant:extra +OK +replicated from primary 'c1': crypto-shred" \
  "$tmp/out"
ok "audit verify on the replica" audit verify "${r[@]}"

# ---- 10. a distant replica ---------------------------------------------------
# 50 ms each way (100 ms round trip) is the distance between regions of one
# geography; replication must work across it.
echo "--- 10. a replica 100 ms away (at ${SECONDS} s)"
start_replica "$replica" c2 "$rlog" "127.0.0.1:$port"
cat >"$tmp/delay_proxy.py" <<'PY'
# delay_proxy.py PORT_FILE TARGET_PORT DELAY_MS: forwards TCP both ways, each
# chunk DELAY_MS later than it arrived, in order.
import os, queue, socket, sys, threading, time
port_file, target, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e3
ls = socket.create_server(("127.0.0.1", 0))
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.replace(port_file + ".tmp", port_file)

def pump(src, dst):
    q = queue.Queue()
    def read():
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            q.put((time.monotonic() + delay, data))
            if not data:
                return
    threading.Thread(target=read, daemon=True).start()
    while True:
        due, data = q.get()
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            dst.sendall(data)
        except OSError:
            return

while True:
    client, _ = ls.accept()
    server = socket.create_connection(("127.0.0.1", target))
    for a, b in ((client, server), (server, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
PY
python3 "$tmp/delay_proxy.py" "$tmp/delay.port" "$port" 50 </dev/null \
  >/dev/null 2>"$tmp/delay.log" &
delay_pid=$!
started "$delay_pid"
check "the delaying proxy starts" wait_file "$tmp/delay.port" "$delay_pid" 10
handshake_failures=$(count "TLS handshake failed" "$rlog")
start_primary "$primary" c1 "$(cat "$tmp/delay.port")" "$ack" --tenants 4 \
  --rate 40
check "a primary 100 ms away connects and ships its writes (within 10 s)" \
  backlog_shipped "$primary" 10
check "... without failed TLS handshakes on the replica" \
  test "$(count "TLS handshake failed" "$rlog")" = "$handshake_failures"
stop "$wl_pid"
stop "$delay_pid"
ship_all "$port"
stop "$rep_pid"
verify_both "distant replica"

# ---- 11. status of tenants not looked at yet ---------------------------------
# A primary restarted with a backlog in many tenants: until the shipper has
# read a tenant's log it does not know the tenant's latest sequence. It must
# not report such a tenant caught up.
echo "--- 11. status with a backlog in many tenants (at ${SECONDS} s)"
ok "init primary c1b" init --data "$tmp/primary_b" --key-file "$key" \
  --cluster-id c1 --region eu-west-1 --geography eu
ok "init replica c2b" init --data "$tmp/replica_b" --key-file "$key" \
  --cluster-id c2 --region eu-central-1 --geography eu --replica
ok "a backlog in 200 tenants, not replicated" workload --data "$tmp/primary_b" \
  --key-file "$key" --tenants 200 --rate 0 --duration 1 --ack-log "$tmp/b.ack"
start_replica "$tmp/replica_b" c2 "$tmp/replica_b.log"
start_primary "$tmp/primary_b" c1 "$rep_port" "$tmp/b_drain.ack" --tenants 1 \
  --tenant-prefix zz --rate 1
mkdir "$tmp/snapshots"
for ((i = 0; i < 150; i++)); do
  "$coffer" replication status --data "$tmp/primary_b" --json \
    >"$tmp/snapshots/$i.json" 2>/dev/null || true
  grep -q '"caught_up":true' "$tmp/snapshots/$i.json" && break
  sleep 0.2
done
check "the backlog is shipped (caught up within 30 s)" \
  grep -q '"caught_up":true' "$tmp/snapshots/$i.json"
check "no status reports a tenant caught up before its writes were applied" \
  python3 - "$tmp/b.ack" "$tmp/snapshots" <<'PY'
import glob, json, sys
acked = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2:
        acked[parts[0]] = max(acked.get(parts[0], 0), int(parts[1]))
wrong = set()
for f in glob.glob(sys.argv[2] + "/*.json"):
    try:
        j = json.load(open(f))
    except ValueError:
        continue
    for t in j["tenants"]:
        # Sequence numbers count writes: n acknowledged writes need >= n.
        if t["state"] == "caught-up" and t["applied_seq"] < acked.get(t["tenant"], 0):
            wrong.add((t["tenant"], t["primary_seq"], t["applied_seq"],
                       acked[t["tenant"]]))
if wrong:
    print("%d tenants reported caught-up too early, e.g. (tenant, primary_seq, "
          "applied_seq, writes): %s" % (len(wrong), sorted(wrong)[:3]),
          file=sys.stderr)
sys.exit(1 if wrong else 0)
PY
stop "$wl_pid"
stop "$rep_pid"
ok "verify the backlog on the replica" verify --data "$tmp/replica_b" \
  --key-file "$key" --ack-log "$tmp/b.ack" --expect-complete

echo "replication_e2e_test: $checks checks, $failures failed, ${SECONDS} s"
[[ $failures -eq 0 ]]
