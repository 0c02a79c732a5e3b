#!/usr/bin/env bash
# End-to-end tests of failover with real processes: a primary (`coffer
# workload --replicate-to`) shipping to a passive replica (`coffer replica
# serve`), then
#   1. forced promotion under load (through the daemon): the loss receipt
#      matches what the replica holds, and the new primary takes writes;
#   2. offline promotion (no daemon runs: the master key is needed);
#   3. a stale primary is fenced by the promoted cluster;
#   4. rejoin of an old primary with divergent writes: they go to encrypted
#      rollback files, byte for byte, and the tenant takes the new history;
#   5. rejoin without divergence: every tenant resumes without a reseed;
#   6. planned switchover under load: zero loss, roles swap, resume;
#   9. the primary killed mid-switchover: reopening it completes the switchover
#   7. switchover without a reachable replica, and interrupted midway: never
#      two writable primaries;
#   8. bounded RPO: a tenant's writes stop (LagExceeded) once its oldest
#      unacknowledged write is older than its bound; other tenants go on.
#
# Every process runs in the background with its output in a temporary
# directory, is waited for by PID, and is killed by PID on exit.
#
# Usage: bash tests/failover_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
# With KEEP_TMP=1 the temporary directory is kept for inspection.
set -euo pipefail

coffer=${1:?usage: failover_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# json_get FILE PYTHON_EXPR: prints PYTHON_EXPR over the JSON in FILE (j).
# (prints 0 if that fails, so that the script goes on to report it).
json_get() {
  python3 -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" \
    "$1" 2>/dev/null || echo 0
}

# ---- background processes ------------------------------------------------------

# wait_lines FILE N SECONDS: waits until FILE has at least N lines.
wait_lines() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [[ $(wc -l <"$1" 2>/dev/null || echo 0) -ge $2 ]] && return 0
    sleep 0.1
  done
  return 1
}

# start_replica DIR CERT_NAME LOG [PORT]: runs `replica serve` on DIR in the
# background (stderr appended to LOG), listening on PORT (default: any);
# sets rep_pid and rep_port.
start_replica() {
  local dir=$1 name=$2 log=$3
  rm -f "$tmp/replica.port"
  "$coffer" replica serve --data "$dir" --key-file "$key" \
    --listen "127.0.0.1:${4:-0}" --tls-cert "$certs/$name.pem" \
    --tls-key "$certs/$name.key" --tls-ca "$certs/ca.pem" \
    --port-file "$tmp/replica.port" </dev/null >/dev/null 2>>"$log" &
  rep_pid=$!
  started "$rep_pid"
  rep_port=
  if wait_file "$tmp/replica.port" "$rep_pid" 15; then
    rep_port=$(cat "$tmp/replica.port")
    pass "replica serve on $(basename "$dir") as $name (port $rep_port)"
  else
    fail "replica serve on $dir does not serve: $(tail -3 "$log")"
    rep_port=1  # nothing listens there: later checks fail, the script goes on
  fi
}

# start_workload DIR CERT_NAME PORT ACK_LOG WORKLOAD_ARGS...: runs `coffer
# workload` on DIR shipping to 127.0.0.1:PORT with CERT_NAME's certificate,
# until stopped; sets wl_pid, wl_started (unix µs) and wl_out/wl_err. With
# WL_WRAP set (a command prefix, e.g. "env --default-signal=PIPE"), runs it
# through that.
wl_runs=0
start_workload() {
  local dir=$1 name=$2 port=$3 ack=$4
  shift 4
  wl_runs=$((wl_runs + 1))
  wl_out=$tmp/workload.$wl_runs.out
  wl_err=$tmp/workload.$wl_runs.err
  wl_started=$(now_micros)
  # shellcheck disable=SC2086
  ${WL_WRAP:-} "$coffer" workload --data "$dir" --key-file "$key" \
    --ack-log "$ack" --replicate-to "127.0.0.1:$port" \
    --tls-cert "$certs/$name.pem" --tls-key "$certs/$name.key" \
    --tls-ca "$certs/ca.pem" --duration 0 "$@" \
    </dev/null >"$wl_out" 2>"$wl_err" &
  wl_pid=$!
  started "$wl_pid"
}

# caught_up DIR SECONDS [SINCE]: waits until DIR's status, as of SINCE (unix
# µs) or later, says connected with every tenant caught up. The status is
# left in $tmp/status.json.
caught_up() {
  local dir=$1 since=${3:-0} deadline=$((SECONDS + $2)) left
  for (( ; ; )); do
    left=$((deadline - SECONDS))
    ((left < 0)) && left=0
    ((left > 2)) && left=2
    if "$coffer" replication status --data "$dir" --json \
      --wait-caught-up "$left" >"$tmp/status.json" 2>/dev/null &&
      python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["as_of_unix_micros"] < int(sys.argv[2]))' \
        "$tmp/status.json" "$since"; then
      return 0
    fi
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# wait_connected DIR SECONDS: waits until the primary DIR says connected
# (as of now or later) and has shipped at least one batch.
wait_connected() {
  local since i
  since=$(now_micros)
  for ((i = 0; i < $2 * 5; i++)); do
    if "$coffer" replication status --data "$1" --json >"$tmp/status.json" \
      2>/dev/null && python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["as_of_unix_micros"] >= int(sys.argv[2]) and
         j["connection"] == "connected" and j["batches"] > 0 else 1)' \
      "$tmp/status.json" "$since"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# drain DIR CERT_NAME PORT: makes the replica at PORT hold every write the
# primary DIR has made, with no write left in flight: runs a primary session
# whose only tenant, drain-000, is over its 1-byte quota (so it ships but
# adds nothing), waits until caught up and stops it with SIGTERM.
drain() {
  local since
  "$coffer" tenant create --data "$1" --key-file "$key" drain-000 --quota 1 \
    >/dev/null 2>&1 || true
  start_workload "$1" "$2" "$3" "$tmp/drain.ack" --tenants 1 \
    --tenant-prefix drain --rate 10
  since=$wl_started
  check "$(basename "$1") ships everything it wrote (caught up within 20 s)" \
    caught_up "$1" 20 "$since"
  stop "$wl_pid"
  check "the draining session exits 0 on SIGTERM" test "$stop_rc" = 0
  check "the draining session wrote nothing" test ! -s "$tmp/drain.ack"
}

# pair N: initializes primary $tmp/pN (c1) and replica $tmp/rN (c2).
pair() {
  ok "init primary p$1 (c1)" init --data "$tmp/p$1" --key-file "$key" \
    --cluster-id c1 --region eu-west-1 --geography eu
  ok "init replica r$1 (c2)" init --data "$tmp/r$1" --key-file "$key" \
    --cluster-id c2 --region eu-central-1 --geography eu --replica
}

# receipt_matches RECEIPT VERIFY_JSON: per tenant of the receipt, the
# replica holds exactly writes 1..promoted_at_seq (one Put per batch, so
# sequence = write number), no wrong value, and at least writes_beyond of the
# acknowledged writes are missing. Prints the loss per tenant.
receipt_matches() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r, v = (json.load(open(f)) for f in sys.argv[1:3])
vt = {t["tenant"]: t for t in v["tenants"]}
bad, loss = [], []
for t in r["tenants"]:
    x = vt.get(t["tenant"])
    if x is None:
        bad.append((t["tenant"], "not in the ack log"))
        continue
    loss.append(f'{t["tenant"]} {x["missing"]} (acked {x["acked"]}, promoted at {t["promoted_at_seq"]})')
    if not (x["exists"] and x["wrong_values"] == 0 and x["holes"] == 0 and
            x["present"] == t["promoted_at_seq"] and
            x["missing"] == max(0, x["acked"] - x["present"]) and
            x["missing"] >= t["writes_beyond"]):
        bad.append((t["tenant"], t, x))
if set(vt) - {t["tenant"] for t in r["tenants"]}:
    bad.append(("tenants missing from the receipt", set(vt)))
print("    loss per tenant (acked writes the new primary lacks):", "; ".join(loss))
if bad:
    print("receipt and replica disagree:", bad, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# ---- setup -----------------------------------------------------------------------

key=$tmp/keys/master.key
certs=$tmp/certs
mkdir -p "$tmp/keys"
ok "keygen" keygen --out "$key"
check "test certificates for c1 and c2" \
  bash "$src/tools/gen_test_certs.sh" "$certs" c1 c2

# ---- 1. forced failover under load -------------------------------------------------
echo "--- 1. forced failover under load (at ${SECONDS} s)"
pair 1
p1=$tmp/p1 r1=$tmp/r1 a1=$tmp/a1.ack
start_replica "$r1" c2 "$tmp/r1.log"
start_workload "$p1" c1 "$rep_port" "$a1" --tenants 4 --rate 800
check "the primary ships to the replica" wait_connected "$p1" 15
sleep 2
stop "$wl_pid" KILL
check "the primary acknowledged writes to 4 tenants before it was killed" \
  test "$(cut -d' ' -f1 "$a1" | sort -u | wc -l)" = 4
ok "promote r1 through its daemon" promote --data "$r1" --json
cp "$tmp/out" "$tmp/receipt1.json"
reap "$rep_pid" 15
check "the daemon exits 0 after the promotion" test "$reap_rc" = 0
check "the daemon log says it was promoted and exits" \
  grep -q "promoted to primary at epoch 2; exiting" "$tmp/r1.log"
json_file_check "the receipt: via the daemon, c1 -> c2, epoch 1 -> 2, 4 tenants" \
  "$tmp/receipt1.json" \
  'j["via"] == "daemon" and j["cluster_id"] == "c2" and j["former_primary"] == "c1" and j["old_epoch"] == 1 and j["new_epoch"] == 2 and [t["tenant"] for t in j["tenants"]] == ["wl-000", "wl-001", "wl-002", "wl-003"] and all(t["promoted_at_seq"] > 0 and t["primary_seq_heard"] >= t["promoted_at_seq"] and t["writes_beyond"] == t["primary_seq_heard"] - t["promoted_at_seq"] for t in j["tenants"]) and j["writes_beyond"] == sum(t["writes_beyond"] for t in j["tenants"])'
ok "verify r1 against the primary's ack log" verify --data "$r1" \
  --key-file "$key" --ack-log "$a1" --json
cp "$tmp/out" "$tmp/verify1.json"
json_file_check "r1 holds a prefix of every tenant: no wrong value, no hole" \
  "$tmp/verify1.json" 'j["wrong_values"] == 0 and j["holes"] == 0'
check "per tenant present == promoted_at_seq, missing >= writes_beyond" \
  receipt_matches "$tmp/receipt1.json" "$tmp/verify1.json"
ok "replication receipt --json on r1" replication receipt --data "$r1" --json
cp "$tmp/out" "$tmp/receipt1b.json"
check "the stored receipt equals what promote printed" python3 -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
keys = ("tenants", "former_primary", "old_epoch", "new_epoch", "writes_beyond")
sys.exit(0 if all(a[k] == b[k] for k in keys) else 1)' \
  "$tmp/receipt1.json" "$tmp/receipt1b.json"
ok "audit show on r1" audit show --data "$r1" --key-file "$key"
check "r1's audit trail records replication.promote" \
  grep -q "replication.promote .*OK" "$tmp/out"
ok "stats of r1" stats --data "$r1" --key-file "$key" --json
json_file_check "r1 is a primary at epoch 2" "$tmp/out" \
  'j["cluster"]["role"] == "primary" and j["cluster"]["epoch"] == 2'
ok "the promoted cluster takes writes" put --data "$r1" --key-file "$key" \
  --tenant wl-000 after/promote yes
ok "... and reads them back" get --data "$r1" --key-file "$key" \
  --tenant wl-000 after/promote
check "... with the value written" test "$out" = yes
fails "promote of a primary fails" 1 "only a replica can be promoted" \
  promote --data "$r1" --key-file "$key"

# ---- 2. offline promotion ----------------------------------------------------------
echo "--- 2. offline promotion (at ${SECONDS} s)"
pair 2
p2=$tmp/p2 r2=$tmp/r2 a2=$tmp/a2.ack
start_replica "$r2" c2 "$tmp/r2.log"
start_workload "$p2" c1 "$rep_port" "$a2" --tenants 3 --rate 600
check "the primary ships to the replica" wait_connected "$p2" 15
sleep 1
stop "$wl_pid" KILL
stop "$rep_pid" TERM
check "the replica daemon exits 0 on SIGTERM" test "$stop_rc" = 0
fails "promote without a daemon and without --key-file" 1 "--key-file" \
  promote --data "$r2"
ok "stats after the refused promotion" stats --data "$r2" --key-file "$key" \
  --json
json_file_check "r2 is still a replica at epoch 1" "$tmp/out" \
  'j["cluster"]["role"] == "replica" and j["cluster"]["epoch"] == 1'
ok "offline promote with --key-file" promote --data "$r2" --key-file "$key" \
  --json
cp "$tmp/out" "$tmp/receipt2.json"
json_file_check "the receipt says offline, epoch 1 -> 2, 3 tenants" \
  "$tmp/receipt2.json" \
  'j["via"] == "offline" and j["old_epoch"] == 1 and j["new_epoch"] == 2 and len(j["tenants"]) == 3'
ok "verify r2" verify --data "$r2" --key-file "$key" --ack-log "$a2" --json
cp "$tmp/out" "$tmp/verify2.json"
check "offline: per tenant present == promoted_at_seq" \
  receipt_matches "$tmp/receipt2.json" "$tmp/verify2.json"
ok "the offline-promoted cluster takes writes" put --data "$r2" \
  --key-file "$key" --tenant wl-001 after/promote yes

# ---- 3. the stale primary is fenced -------------------------------------------------
echo "--- 3. stale primary fenced (at ${SECONDS} s)"
start_replica "$r1" c2 "$tmp/fence.log"
fence_pid=$rep_pid
check "the promoted cluster's server only fences" \
  grep -q "is a primary (epoch 2): serving on port .* only to fence stale primaries" \
  "$tmp/fence.log"
start_workload "$p1" c1 "$rep_port" "$tmp/a3.ack" --tenants 4 --rate 100
reap "$wl_pid" 15
check "the stale primary's workload stops with status 1" test "$reap_rc" = 1
check "... reporting Fenced" grep -q "Fenced: cluster 'c1' is fenced" "$wl_err"
# Replication is asynchronous: until its first handshake the stale primary
# cannot know, and takes writes (they are beyond the fork; see 4).
echo "    the stale primary acknowledged $(wc -l <"$tmp/a3.ack") write(s) before it learned"
check "the stale primary stopped at its first handshake (< 1 s of writes)" \
  test "$(wc -l <"$tmp/a3.ack")" -lt 100
check "the responder logs the refusal of the stale primary" \
  grep -q "refused c1: .*stale primary" "$tmp/fence.log"
ok "replication status of p1" replication status --data "$p1"
check "p1's status shows FENCED" grep -q "^FENCED: .*'c2' is the primary at epoch 2" "$tmp/out"
ok "replication status --json of p1" replication status --data "$p1" --json
json_file_check "p1's status names the fencing cluster and epoch" "$tmp/out" \
  'j["fenced_by"] == "c2" and j["fenced_by_epoch"] == 2 and j["epoch"] == 1'
fails "put on the fenced old primary" 1 "Fenced" put --data "$p1" \
  --key-file "$key" --tenant wl-000 k v
ok "audit show on p1" audit show --data "$p1" --key-file "$key"
check "p1's audit trail records replication.fenced" \
  grep -q "replication.fenced" "$tmp/out"
ok "metrics of p1" metrics --data "$p1"
check "p1's metrics: coffer_replication_fenced 1" \
  grep -Eq '^coffer_replication_fenced\{.*\} 1$' "$tmp/out"
stop "$fence_pid"
check "the fence responder exits 0 on SIGTERM" test "$stop_rc" = 0
ok "verify r1 after the fencing" verify --data "$r1" --key-file "$key" \
  --ack-log "$a1"
# A fenced cluster knows who replaced it: rejoining anyone else is refused
# (it would then refuse c2 and could not rejoin again), and changes nothing.
fails "rejoin of the fenced p1 to a cluster other than c2" 1 \
  "InvalidArgument: cluster 'c1' was fenced by 'c2', the primary at epoch 2; rejoin it, not 'c9'" \
  rejoin --data "$p1" --key-file "$key" --primary-id c9
ok "p1 after the refused rejoin" replication status --data "$p1" --json
json_file_check "p1 is still the fenced primary" "$tmp/out" \
  'j["role"] == "primary" and j["fenced_by"] == "c2"'

# ---- 4. rejoin with divergent writes -------------------------------------------------
echo "--- 4. rejoin with divergent writes (at ${SECONDS} s)"
pair 4
p4=$tmp/p4 r4=$tmp/r4 a4=$tmp/a4.ack b4=$tmp/b4.ack
start_replica "$r4" c2 "$tmp/r4.log"
r4_port=$rep_port
# First everything of 3 tenants reaches the replica; then the primary dies
# while writing to 2 of them, so wl-002 has nothing beyond its fork.
start_workload "$p4" c1 "$r4_port" "$a4" --tenants 3 --rate 300
check "the primary ships to the replica" wait_connected "$p4" 15
sleep 1
stop "$wl_pid"
check "the primary's first session exits 0 on SIGTERM" test "$stop_rc" = 0
drain "$p4" c1 "$r4_port"
start_workload "$p4" c1 "$r4_port" "$a4" --tenants 2 --rate 300
check "the primary ships to the replica again" wait_connected "$p4" 15
sleep 1
stop "$wl_pid" KILL
ok "promote r4 through its daemon" promote --data "$r4" --json
cp "$tmp/out" "$tmp/receipt4.json"
reap "$rep_pid" 15
check "r4's daemon exits 0 after the promotion" test "$reap_rc" = 0
# What p4 holds beyond the fork before any divergent write: a killed primary
# may have writes the replica never got (they are divergent too).
ok "verify p4 before the partitioned writes" verify --data "$p4" \
  --key-file "$key" --ack-log "$a4" --json
cp "$tmp/out" "$tmp/verify4pre.json"
# The partition: p4 does not know it was replaced and writes on, without
# replication, to wl-000 and wl-001 only, with bigger values than the new
# primary will write for the same keys.
ok "partitioned writes on p4 (wl-000, wl-001)" workload --data "$p4" \
  --key-file "$key" --tenants 2 --rate 100 --duration 1 --ack-log "$a4" \
  --value-size 150
fork0=$(json_get "$tmp/receipt4.json" '[t["promoted_at_seq"] for t in j["tenants"] if t["tenant"] == "wl-000"][0]')
last0=$(last_n "$a4" wl-000)
check "wl-000 has writes beyond its fork ($fork0..$last0)" test "$last0" -gt "$fork0"
# Tenants with local history beyond their fork: wl-000, wl-001, and any
# whose last writes the forced failover lost.
divergent=$(python3 -c '
import json, sys
r, v = (json.load(open(f)) for f in sys.argv[1:3])
fork = {t["tenant"]: t["promoted_at_seq"] for t in r["tenants"]}
d = {"wl-000", "wl-001"} | {t["tenant"] for t in v["tenants"] if t["present"] > fork[t["tenant"]]}
print(" ".join(sorted(d)))' "$tmp/receipt4.json" "$tmp/verify4pre.json") ||
  divergent="(unknown: see the failures above)"
echo "    fork of wl-000: $fork0, its last write: $last0; divergent tenants: $divergent"
# Capture what p4 returns for wl-000's divergent keys: every value through
# scan, and a sample through get --raw, byte for byte.
mkdir -p "$tmp/div"
ok "scan p4's wl-000 from write $((fork0 + 1))" scan --data "$p4" \
  --key-file "$key" --tenant wl-000 --start "$(printf 'wl/%012d' $((fork0 + 1)))" \
  --limit 0 --json
check "the scan has every divergent write of wl-000 ($((fork0 + 1))..$last0)" \
  python3 - "$tmp/out" "$tmp/div" "$fork0" "$last0" <<'PY'
import json, os, sys
entries = json.load(open(sys.argv[1]))["entries"]
ns = []
for e in entries:
    n = int(e["key"][3:])
    ns.append(n)
    open(os.path.join(sys.argv[2], str(n)), "wb").write(e["value"].encode("utf-8"))
sys.exit(0 if ns == list(range(int(sys.argv[3]) + 1, int(sys.argv[4]) + 1)) else 1)
PY
for n in $((fork0 + 1)) $(((fork0 + last0) / 2)) "$last0"; do
  ok "get wl-000 write $n on p4" get --data "$p4" --key-file "$key" \
    --tenant wl-000 "$(printf 'wl/%012d' "$n")" --raw
  check "get --raw of write $n returns the scanned bytes" \
    cmp -s "$tmp/out" "$tmp/div/$n"
done
ok "rejoin p4 as a replica of c2" rejoin --data "$p4" --key-file "$key" \
  --primary-id c2
ok "stats of p4 after rejoin" stats --data "$p4" --key-file "$key" --json
json_file_check "p4 is a replica" "$tmp/out" 'j["cluster"]["role"] == "replica"'
# Serving it for another primary would refuse c2 on every connection.
fails "replica serve of p4 for a primary other than c2" 1 \
  "InvalidArgument: cluster 'c1' is the replica of 'c2', not of 'c9'" \
  replica serve --data "$p4" --key-file "$key" --listen 127.0.0.1:0 \
  --tls-cert "$certs/c1.pem" --tls-key "$certs/c1.key" \
  --tls-ca "$certs/ca.pem" --primary-id c9
start_replica "$p4" c1 "$tmp/p4.log"
p4_pid=$rep_pid p4_port=$rep_port
# The new primary continues the history as of the fork: its ack log starts
# with the writes the fork point includes.
python3 - "$a4" "$tmp/receipt4.json" "$b4" <<'PY'
import json, sys
fork = {t["tenant"]: t["promoted_at_seq"] for t in json.load(open(sys.argv[2]))["tenants"]}
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[1]):
        t, n = line.split()
        if int(n) <= fork[t]:
            out.write(line)
PY
start_workload "$r4" c2 "$p4_port" "$b4" --tenants 3 --rate 600
sleep 2
stop "$wl_pid"
check "the new primary's workload exits 0 on SIGTERM" test "$stop_rc" = 0
drain "$r4" c2 "$p4_port"
stop "$p4_pid"
check "p4's replica daemon exits 0 on SIGTERM" test "$stop_rc" = 0
ok "rollback show --json on p4" rollback show --data "$p4" --json
cp "$tmp/out" "$tmp/rollback4.json"
json_file_check "rollback files exactly for the divergent tenants ($divergent)" \
  "$tmp/rollback4.json" \
  "sorted(f['tenant'] for f in j) == '$divergent'.split() and all(f['new_primary'] == 'c2' and f['epoch'] == 2 and f['kind'] == 'batches' for f in j)"
# (A write the killed primary made but never acknowledged, rewritten by the
# partitioned workload, takes one more sequence.)
json_file_check "wl-000's rollback file starts at its fork ($fork0) and ends at $last0" \
  "$tmp/rollback4.json" \
  "[(f['fork_seq'], f['local_latest_seq'] in ($last0, $last0 + 1)) for f in j if f['tenant'] == 'wl-000'] == [($fork0, True)]"
latest0=$(json_get "$tmp/rollback4.json" "[f['local_latest_seq'] for f in j if f['tenant'] == 'wl-000'][0]")
for t in $divergent; do
  check "p4's daemon log: $t's writes after the fork were saved" \
    grep -Eq "tenant '$t' rejoined: .* saved to .*/rollback/" "$tmp/p4.log"
done
check "wl-002 has no write beyond its fork" test "$divergent" = "wl-000 wl-001"
check "p4's daemon log: wl-002 resumed without a reseed" \
  grep -Eq "tenant 'wl-002' rejoined: history matches .*resumed without a reseed" \
  "$tmp/p4.log"
ok "rollback export --tenant wl-000" rollback export --data "$p4" \
  --key-file "$key" --tenant wl-000
cp "$tmp/out" "$tmp/export4"
# A --file that names none of the tenant's files is an error, never an
# empty export (which would read as "nothing diverged").
fails "rollback export --file naming no rollback file" 1 \
  "no rollback file 'typo.rbk' of tenant 'wl-000' in .*/rollback" \
  rollback export --data "$p4" --key-file "$key" --tenant wl-000 --file typo.rbk
# One damaged file hides no other: show and export still list and export
# the readable ones, then fail naming it (its tenant cannot be known).
printf 'not a rollback file' >"$p4/rollback/junk-1.rbk"
fails "rollback show with a damaged file" 1 \
  "rollback show: Corruption: .*/junk-1.rbk" \
  rollback show --data "$p4" --tenant wl-000
check "  still lists wl-000's file" grep -q "^  tenant wl-000, " "$tmp/out"
fails "rollback export with a damaged file" 1 \
  "rollback export: Corruption: .*/junk-1.rbk" \
  rollback export --data "$p4" --key-file "$key" --tenant wl-000
check "  still exports wl-000's writes" cmp -s "$tmp/out" "$tmp/export4"
rm "$p4/rollback/junk-1.rbk"
check "the export holds exactly wl-000's writes $((fork0 + 1))..$last0, byte for byte" \
  python3 - "$tmp/export4" "$fork0" "$last0" "$tmp/div" "$latest0" <<'PY'
import json, os, sys
path, fork, last, div = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = [json.loads(line) for line in open(path, encoding="utf-8")]
seqs = [r["seq"] for r in rows]
problems = []
if seqs != list(range(fork + 1, int(sys.argv[5]) + 1)):
    problems.append(f"sequences {seqs[:3]}..{seqs[-3:]} are not {fork + 1}..{sys.argv[5]}")
if any(r["op"] != "put" for r in rows):
    problems.append("an op other than put")
latest = {}
for r in rows:
    latest[int(r["key"][3:])] = r["value"].encode("utf-8")
# (The write the killed primary made but never logged as acknowledged is
# rewritten by the partitioned run after the fork: it may appear too.)
if sorted(latest) not in (list(range(fork + 1, last + 1)),
                          list(range(fork, last + 1))):
    problems.append(f"write numbers {sorted(latest)[:3]}..{sorted(latest)[-3:]}")
for n in range(fork + 1, last + 1):
    if latest.get(n) != open(os.path.join(div, str(n)), "rb").read():
        problems.append(f"write {n} differs from what p4 returned before the rejoin")
        break
print(f"    {len(rows)} exported writes")
if problems:
    print("; ".join(problems), file=sys.stderr)
sys.exit(1 if problems else 0)
PY
check "the rollback files hold no divergent value in plaintext" \
  no_file_contains "$p4/rollback" "$tmp/div/$last0" "$tmp/div/$((fork0 + 1))"
check "nothing under p4 holds a divergent value in plaintext" \
  no_file_contains "$p4" "$tmp/div/$last0" "$tmp/div/$((fork0 + 1))"
ok "verify p4 against the new primary's ack log" verify --data "$p4" \
  --key-file "$key" --ack-log "$b4" --expect-complete
ok "verify r4 against the new primary's ack log" verify --data "$r4" \
  --key-file "$key" --ack-log "$b4" --expect-complete
run get --data "$p4" --key-file "$key" --tenant wl-000 \
  "$(printf 'wl/%012d' "$last0")" --raw
expected_value wl-000 "$last0" 100 >"$tmp/new_value"
checks=$((checks + 1))
if [[ $rc -eq 0 ]] && cmp -s "$tmp/out" "$tmp/new_value" &&
  ! cmp -s "$tmp/out" "$tmp/div/$last0"; then
  pass "p4's wl-000 write $last0 is now the new primary's value"
elif [[ $rc -eq 1 ]] && grep -q "not found" "$tmp/err"; then
  pass "p4's wl-000 write $last0 is gone (the new primary never wrote it)"
else
  fail "p4's wl-000 write $last0 after the rejoin: exit $rc, $(head -c 60 "$tmp/out") $err"
fi

# ---- 5. rejoin without divergence ----------------------------------------------------
echo "--- 5. rejoin without divergence (at ${SECONDS} s)"
pair 5
p5=$tmp/p5 r5=$tmp/r5 a5=$tmp/a5.ack
start_replica "$r5" c2 "$tmp/r5.log"
r5_pid=$rep_pid r5_port=$rep_port
start_workload "$p5" c1 "$r5_port" "$a5" --tenants 3 --rate 600
check "the primary ships to the replica" wait_connected "$p5" 15
sleep 1
stop "$wl_pid"
check "the planned stop of the primary's workload exits 0" test "$stop_rc" = 0
drain "$p5" c1 "$r5_port"
ok "promote r5 through its daemon" promote --data "$r5" --json
cp "$tmp/out" "$tmp/receipt5.json"
reap "$r5_pid" 15
check "r5's daemon exits 0 after the promotion" test "$reap_rc" = 0
json_file_check "nothing was beyond the promotion point" "$tmp/receipt5.json" \
  'j["writes_beyond"] == 0 and all(t["writes_beyond"] == 0 for t in j["tenants"])'
ok "verify r5: zero loss" verify --data "$r5" --key-file "$key" \
  --ack-log "$a5" --expect-complete
ok "rejoin p5 as a replica of c2" rejoin --data "$p5" --key-file "$key" \
  --primary-id c2
start_replica "$p5" c1 "$tmp/p5.log"
p5_pid=$rep_pid
start_workload "$r5" c2 "$rep_port" "$a5" --tenants 3 --rate 300
check "the new primary r5 ships to p5 (caught up within 20 s)" \
  caught_up "$r5" 20 "$wl_started"
stop "$wl_pid"
check "the new primary's workload exits 0 on SIGTERM" test "$stop_rc" = 0
stop "$p5_pid"
check "p5's daemon exits 0 on SIGTERM" test "$stop_rc" = 0
for t in wl-000 wl-001 wl-002; do
  check "p5's daemon log: $t resumed without a reseed" \
    grep -Eq "tenant '$t' rejoined: history matches .*resumed without a reseed" \
    "$tmp/p5.log"
done
check "p5's daemon log: nothing saved to a rollback file" \
  test "$(count "saved to" "$tmp/p5.log")" = 0
ok "rollback show on p5" rollback show --data "$p5"
check "rollback show says there are no rollback files" \
  test "$out" = "no rollback files"
ok "verify p5 after the rejoin" verify --data "$p5" --key-file "$key" \
  --ack-log "$a5"

# ---- 6. planned switchover under load -------------------------------------------------
echo "--- 6. planned switchover under load (at ${SECONDS} s)"
pair 6
p6=$tmp/p6 r6=$tmp/r6 a6=$tmp/a6.ack
start_replica "$r6" c2 "$tmp/r6.log"
r6_pid=$rep_pid
start_workload "$p6" c1 "$rep_port" "$a6" --tenants 3 --rate 600
p6_wl=$wl_pid p6_err=$wl_err
check "the primary ships to the replica" wait_connected "$p6" 15
sleep 1.5
ok "switchover of p6" switchover --data "$p6" --json
cp "$tmp/out" "$tmp/switchover6.json"
json_file_check "the switchover report: c2 at epoch 2, 3 tenants" \
  "$tmp/switchover6.json" \
  'j["new_primary"] == "c2" and j["new_epoch"] == 2 and j["tenants"] == 3 and j["write_pause_micros"] > 0'
reap "$p6_wl" 15
check "the old primary's workload exits 1" test "$reap_rc" = 1
check "... because its writes fail with Fenced" \
  grep -q "Fenced: cluster 'c1' is switching over to 'c2'" "$p6_err"
reap "$r6_pid" 15
check "the replica daemon exits 0 as the new primary" test "$reap_rc" = 0
check "the daemon log says it became the primary" \
  grep -q "switchover: this cluster is now the primary" "$tmp/r6.log"
ok "verify r6: zero loss" verify --data "$r6" --key-file "$key" \
  --ack-log "$a6" --expect-complete
ok "stats of r6" stats --data "$r6" --key-file "$key" --json
cp "$tmp/out" "$tmp/stats6r.json"
ok "stats of p6" stats --data "$p6" --key-file "$key" --json
cp "$tmp/out" "$tmp/stats6p.json"
check "r6 is the primary, p6 its replica, at the same epoch 2" python3 -c '
import json, sys
r, p = (json.load(open(f))["cluster"] for f in sys.argv[1:3])
sys.exit(0 if (r["role"], p["role"], r["epoch"], p["epoch"]) ==
         ("primary", "replica", 2, 2) else 1)' "$tmp/stats6r.json" "$tmp/stats6p.json"
# The old primary's last replication status, written as its process
# stopped, says what it now is: monitoring must not see two primaries.
ok "replication status of p6 after the switchover" replication status \
  --data "$p6" --json
json_file_check "p6's status: a replica at epoch 2" "$tmp/out" \
  'j["role"] == "replica" and j["epoch"] == 2'
ok "metrics of p6 after the switchover" metrics --data "$p6"
check "p6's metrics say role replica" grep -q 'role="replica"' "$tmp/out"
start_replica "$p6" c1 "$tmp/p6.log"
p6_pid=$rep_pid
start_workload "$r6" c2 "$rep_port" "$a6" --tenants 3 --rate 300
check "the new primary r6 ships to p6 (caught up within 20 s)" \
  caught_up "$r6" 20 "$wl_started"
stop "$wl_pid"
check "the new primary's workload exits 0 on SIGTERM" test "$stop_rc" = 0
stop "$p6_pid"
check "p6's daemon exits 0 on SIGTERM" test "$stop_rc" = 0
for t in wl-000 wl-001 wl-002; do
  check "p6's daemon log: $t resumed without a reseed" \
    grep -Eq "tenant '$t' rejoined: history matches .*resumed without a reseed" \
    "$tmp/p6.log"
done
check "p6's daemon log: no reseed, nothing rolled back" \
  test "$(grep -v "without a reseed" "$tmp/p6.log" | count "reseed|saved to" -)" = 0

# ---- 7. switchover without its replica -------------------------------------------------
echo "--- 7. switchover without its replica, and interrupted (at ${SECONDS} s)"
pair 7
p7=$tmp/p7 r7=$tmp/r7 a7=$tmp/a7.ack
# 7a. The replica daemon dies under load. The primary must survive the
# broken connection (a write to it must not raise SIGPIPE, whatever the
# disposition the application inherited), and a switchover then is refused.
# The race between the primary's writer noticing the broken connection and
# its reader noticing the close is tried up to 4 times.
start_replica "$r7" c2 "$tmp/r7.log"
wrap=""
env --default-signal=PIPE true 2>/dev/null && wrap="env --default-signal=PIPE"
WL_WRAP=$wrap start_workload "$p7" c1 "$rep_port" "$a7" --tenants 4 --rate 800
p7_wl=$wl_pid
for attempt in 1 2 3 4; do
  check "the primary ships to the replica (attempt $attempt)" \
    wait_connected "$p7" 15
  sleep 0.5
  stop "$rep_pid" KILL
  sleep 1
  alive "$p7_wl" || break
  [[ $attempt -lt 4 ]] && start_replica "$r7" c2 "$tmp/r7.log" "$rep_port"
done
checks=$((checks + 1))
if alive "$p7_wl"; then
  pass "the primary survives its replica daemon's SIGKILL (4 times)"
else
  reap "$p7_wl" 1
  fail "the primary died when its replica daemon was killed (attempt $attempt): exit $reap_rc$( ((reap_rc == 141)) && echo ' (SIGPIPE)'), stdout: '$(head -c 200 "$wl_out")', stderr: '$(head -c 200 "$wl_err")'"
fi
if alive "$p7_wl"; then
  fails "switchover without a connected replica" 1 \
    "not connected to the replica" switchover --data "$p7"
  before=$(wc -l <"$a7")
  check "the refused switchover stops nothing: p7 keeps taking writes" \
    wait_lines "$a7" $((before + 50)) 10
  stop "$p7_wl"
  check "p7's workload exits 0 on SIGTERM" test "$stop_rc" = 0
else
  fails "switchover with no process running p7" 1 \
    "no process running the primary" switchover --data "$p7"
fi
ok "stats of r7" stats --data "$r7" --key-file "$key" --json
json_file_check "r7 is still a replica at epoch 1" "$tmp/out" \
  'j["cluster"]["role"] == "replica" and j["cluster"]["epoch"] == 1'
fails "r7 refuses writes" 1 "ReadOnly" put --data "$r7" --key-file "$key" \
  --tenant wl-000 k v

# 7b. The replica dies in the middle of a switchover (stopped with SIGSTOP
# while the primary waits for it, then killed). The primary is launched with
# SIGPIPE ignored so that this part does not depend on 7a.
start_replica "$r7" c2 "$tmp/r7.log"
WL_WRAP="env --ignore-signal=PIPE" start_workload "$p7" c1 "$rep_port" "$a7" \
  --tenants 4 --rate 600
p7_wl=$wl_pid p7_err=$wl_err
check "the primary ships to the replica again" wait_connected "$p7" 15
kill -STOP "$rep_pid"
"$coffer" switchover --data "$p7" >"$tmp/so7.out" 2>"$tmp/so7.err" </dev/null &
so_pid=$!
started "$so_pid"
sleep 0.7
check "the switchover waits for the stopped replica" alive "$so_pid"
stop "$rep_pid" KILL
reap "$so_pid" 15
checks=$((checks + 1))
if [[ $reap_rc -eq 1 && $(wc -l <"$tmp/so7.err") -eq 1 ]] &&
  grep -q "the replica disconnected during the switchover; this cluster takes no writes" \
    "$tmp/so7.err"; then
  pass "the interrupted switchover fails with one line saying writes stay stopped"
else
  fail "the interrupted switchover: exit $reap_rc, stderr: $(cat "$tmp/so7.err")"
fi
sleep 1
check "p7's workload keeps running, waiting for the switchover to complete" \
  alive "$p7_wl"
check "... its writes fail with Fenced (switching over)" \
  grep -q "Fenced: cluster 'c1' is switching over to 'c2'" "$p7_err"
acked7=$(wc -l <"$a7")
run replication status --data "$p7" --json
check "replication status of p7 shows the write stop" \
  grep -q '"switchover_to":"c2"' "$tmp/out"
# Retrying through the process that still runs the primary completes it.
start_replica "$r7" c2 "$tmp/r7.log" "$rep_port"
r7_pid=$rep_pid
check "the primary reconnects to the replica" wait_connected "$p7" 20
ok "the retried switchover completes" switchover --data "$p7" --json
reap "$r7_pid" 20
check "r7's daemon exits 0 as the new primary" test "$reap_rc" = 0
reap "$p7_wl" 15
check "p7's workload then stops with status 1 (ReadOnly: now a replica)" \
  test "$reap_rc" = 1
check "p7 took no acknowledged write after the interrupted switchover" \
  test "$(wc -l <"$a7")" = "$acked7"
ok "audit show on p7" audit show --data "$p7" --key-file "$key"
check "p7's audit: switchover begun, failed, then done" \
  grep -Ezq "replication.switchover_begin .*replication.switchover +cluster:c2 +IOError.*replication.switchover_done" \
  "$tmp/out"
ok "stats of r7 after the completion" stats --data "$r7" --key-file "$key" --json
json_file_check "r7 is the primary at epoch 2" "$tmp/out" \
  'j["cluster"]["role"] == "primary" and j["cluster"]["epoch"] == 2'
ok "stats of p7 after the completion" stats --data "$p7" --key-file "$key" --json
json_file_check "p7 is its replica at epoch 2" "$tmp/out" \
  'j["cluster"]["role"] == "replica" and j["cluster"]["epoch"] == 2'
ok "verify r7: nothing acknowledged was lost" verify --data "$r7" \
  --key-file "$key" --ack-log "$a7" --expect-complete
fails "put on p7 fails: it is a replica now" 1 "ReadOnly" put --data "$p7" \
  --key-file "$key" --tenant wl-000 k v
ok "put on r7 succeeds: the one writable primary" put --data "$r7" \
  --key-file "$key" --tenant wl-000 k v

# ---- 8. bounded RPO ------------------------------------------------------------------
echo "--- 8. bounded RPO (at ${SECONDS} s)"
ok "init primary p8" init --data "$tmp/p8" --key-file "$key" --cluster-id c1 \
  --region eu-west-1 --geography eu
ok "tenant create wl-000 --rpo-bound 1000" tenant create --data "$tmp/p8" \
  --key-file "$key" wl-000 --rpo-bound 1000
# A port nothing listens on: the replica is down for the whole run.
dead_port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run workload --data "$tmp/p8" --key-file "$key" --ack-log "$tmp/a8.ack" \
  --replicate-to "127.0.0.1:$dead_port" --tls-cert "$certs/c1.pem" \
  --tls-key "$certs/c1.key" --tls-ca "$certs/ca.pem" --tenants 2 --rate 200 \
  --duration 3 --json
cp "$tmp/out" "$tmp/workload8.json"
cp "$tmp/err" "$tmp/workload8.err"
checks=$((checks + 1))
if [[ $rc -eq 0 ]]; then pass "workload with the replica down runs 3 s"; else fail "workload 8: exit $rc: $err"; fi
n0=$(last_n "$tmp/a8.ack" wl-000)
n1=$(last_n "$tmp/a8.ack" wl-001)
echo "    wl-000 (bound 1000 ms) last n $n0; wl-001 (no bound) last n $n1"
check "wl-000 wrote about 1 s of writes, then stopped (60 <= $n0 <= 160)" \
  test "$n0" -ge 60 -a "$n0" -le 160
check "wl-000's failures are LagExceeded" \
  grep -q "tenant 'wl-000' write $((n0 + 1)): LagExceeded: .*RPO bound of 1000 ms" \
  "$tmp/workload8.err"
check "wl-001 keeps writing ($n1 >= 250)" test "$n1" -ge 250
check "no failure of wl-001" test "$(count "tenant 'wl-001'" "$tmp/workload8.err")" = 0
check "only LagExceeded failures" \
  test "$(count "LagExceeded" "$tmp/workload8.err")" = "$(wc -l <"$tmp/workload8.err")"
ok "verify p8" verify --data "$tmp/p8" --key-file "$key" --ack-log "$tmp/a8.ack" \
  --expect-complete

# ---- 9. the primary killed mid-switchover ---------------------------------------------
echo "--- 9. the primary process killed in the middle of a switchover (at ${SECONDS} s)"
pair 9
p9=$tmp/p9 r9=$tmp/r9 a9=$tmp/a9.ack
start_replica "$r9" c2 "$tmp/r9.log"
r9_pid=$rep_pid port9=$rep_port
start_workload "$p9" c1 "$port9" "$a9" --tenants 3 --rate 600
p9_wl=$wl_pid
check "p9 ships to r9" wait_connected "$p9" 15
# The replica is held (SIGSTOP) so that the switchover waits, writes already
# stopped; then the primary process dies.
kill -STOP "$r9_pid"
"$coffer" switchover --data "$p9" >"$tmp/so9.out" 2>"$tmp/so9.err" </dev/null &
so9=$!
started "$so9"
sleep 0.7
stop "$p9_wl" KILL
reap "$so9" 15
check "the switchover fails when the primary process dies" test "$reap_rc" -ne 0
acked9=$(wc -l <"$a9")
kill -CONT "$r9_pid"
fails "p9 takes no writes: the switchover is recorded" 1 \
  "Fenced: cluster 'c1' is switching over" put --data "$p9" --key-file "$key" \
  --tenant wl-000 k v
check "r9's daemon still serves: r9 is still a replica" alive "$r9_pid"
# Reopening the primary (any process running it) completes the switchover
# once its replica is connected.
start_workload "$p9" c1 "$port9" "$a9" --tenants 3 --rate 600
p9_wl=$wl_pid
reap "$r9_pid" 20
check "reopening p9 completes the switchover: r9's daemon exits 0 as the new primary" \
  test "$reap_rc" = 0
reap "$p9_wl" 15
check "the reopened p9 stops with status 1 once it is a replica" \
  test "$reap_rc" = 1
check "p9 took no acknowledged write after the switchover began" \
  test "$(wc -l <"$a9")" = "$acked9"
ok "verify r9: nothing acknowledged was lost" verify --data "$r9" \
  --key-file "$key" --ack-log "$a9" --expect-complete
ok "stats of p9" stats --data "$p9" --key-file "$key" --json
json_file_check "p9 is a replica at epoch 2" "$tmp/out" \
  'j["cluster"]["role"] == "replica" and j["cluster"]["epoch"] == 2'
ok "put on r9: the one writable primary" put --data "$r9" --key-file "$key" \
  --tenant wl-000 k v

echo "--- done in ${SECONDS} s"
if [[ $failures -ne 0 ]]; then
  echo "failover_test: $failures of $checks checks failed" >&2
  exit 1
fi
echo "failover_test: all $checks checks passed"
