#!/usr/bin/env bash
# Tests of `coffer workload` and `coffer verify`, run against a real cluster:
# the ack log, resuming, stopping by signal and by SIGKILL, and verify's
# detection of missing records, holes, wrong values and malformed logs.
#
# Usage: bash tests/workload_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
set -euo pipefail

coffer=${1:?usage: workload_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# contiguous ACK_LOG: every tenant's lines are 1, 2, 3, ... in order (true of
# a log only workload wrote, with its torn last line, if any, cut off).
contiguous() {
  python3 - "$1" <<'PY'
import sys
last = {}
for number, line in enumerate(open(sys.argv[1]).read().splitlines(), 1):
    tenant, n = line.split(" ")
    if int(n) != last.get(tenant, 0) + 1:
        sys.exit(f"line {number}: {line!r} after {last.get(tenant, 0)}")
    last[tenant] = int(n)
PY
}

# wait_for_lines ACK_LOG: waits (up to 20 s) until ACK_LOG grows by a line.
wait_for_lines() {
  local lines
  lines=$(wc -l <"$1" 2>/dev/null || echo 0)
  for _ in $(seq 200); do
    if [[ $(wc -l <"$1" 2>/dev/null || echo 0) -gt $lines ]]; then return 0; fi
    sleep 0.1
  done
  return 1
}

key=$tmp/master.key
data=$tmp/data
log=$tmp/ack.log
c=(--data "$data" --key-file "$key")

# --- help and usage errors ---------------------------------------------------
for cmd in workload verify; do
  ok "help of '$cmd'" $cmd --help
  check "help of '$cmd' shows usage" grep -q "Usage: coffer $cmd" "$tmp/out"
  check "help of '$cmd' has a description" \
    test "$(head -c 400 "$tmp/out" | wc -w)" -ge 12
done
ok "coffer --help" --help
check "coffer --help lists workload and verify" \
  grep -Eq "^ +workload .*^ +verify |^ +verify " "$tmp/out"

ok "keygen" keygen --out "$key"
ok "init" init "${c[@]}" --cluster-id c1 --region eu-west-1 --geography eu

w=(workload "${c[@]}" --ack-log "$log")
fails "workload without --ack-log" 2 "--ack-log" workload "${c[@]}" \
  --tenants 1 --rate 1 --duration 1
fails "workload without --tenants" 2 "--tenants" "${w[@]}" --rate 1 \
  --duration 1
fails "workload --tenants 0" 2 "--tenants" "${w[@]}" --tenants 0 --rate 1 \
  --duration 1
fails "workload --rate -1" 2 "-1" "${w[@]}" --tenants 1 --rate -1 --duration 1
fails "workload --value-size 0" 2 "--value-size" "${w[@]}" --tenants 1 \
  --rate 1 --duration 1 --value-size 0
fails "workload --value-size 12XB" 2 "12XB" "${w[@]}" --tenants 1 --rate 1 \
  --duration 1 --value-size 12XB
# A value that cannot fit one write (8 MiB with its key) failed every
# write and still exited 0.
fails "workload --value-size 9MiB" 2 "--value-size" "${w[@]}" --tenants 1 \
  --rate 1 --duration 1 --value-size 9MiB
# Durations past about 292 years overflowed the clock and stopped at once.
fails "workload --duration 9223372036854775807" 2 "--duration" "${w[@]}" \
  --tenants 1 --rate 1 --duration 9223372036854775807
fails "workload --rekey-every 0" 2 "--rekey-every" "${w[@]}" --tenants 1 \
  --rate 1 --duration 1 --rotate-every 100 --rekey-every 0
fails "workload with a bad --tenant-prefix" 2 "--tenant-prefix" "${w[@]}" \
  --tenants 1 --rate 1 --duration 1 --tenant-prefix Bad
fails "workload --replicate-to without TLS files" 2 "--tls-cert" "${w[@]}" \
  --tenants 1 --rate 1 --duration 1 --replicate-to localhost:7400
fails "verify without --ack-log" 2 "--ack-log" verify "${c[@]}"
fails "verify --expect-complete with --max-missing" 2 "excludes" \
  verify "${c[@]}" --ack-log "$log" --expect-complete --max-missing 1
check "usage errors create no ack log" test ! -e "$log"
fails "verify of a missing ack log" 1 "NotFound: ack log .* does not exist" \
  verify "${c[@]}" --ack-log "$log"
fails "workload with an ack log in a missing directory" 1 \
  "IOError: cannot open the ack log" workload "${c[@]}" --tenants 1 --rate 1 \
  --duration 1 --ack-log "$tmp/nowhere/ack.log"

# --- a first run ---------------------------------------------------------------
ok "workload: 3 tenants at 300/s for 2 s" "${w[@]}" --tenants 3 --rate 300 \
  --duration 2
check "workload prints the summary" grep -q "^stopped by: *duration$" "$tmp/out"
acked=$(sed -n 's/^writes acked: *//p' "$tmp/out")
check "the summary counts the lines of the ack log" \
  test "$acked" = "$(wc -l <"$log")"
check "about 600 writes were acked" test "$acked" -ge 200 -a "$acked" -le 603
check "each tenant's lines are 1, 2, 3, ..." contiguous "$log"
for t in wl-000 wl-001 wl-002; do
  check "the summary shows the last n of $t" \
    grep -q "^tenant $t: *last n $(last_n "$log" $t) " "$tmp/out"
done
check "the ack log has lines of every tenant" \
  test "$(cut -d' ' -f1 "$log" | sort -u | tr '\n' ' ')" = "wl-000 wl-001 wl-002 "

ok "verify" verify "${c[@]}" --ack-log "$log"
for t in wl-000 wl-001 wl-002; do
  n=$(last_n "$log" $t)
  check "verify: $t holds exactly its $n acked writes" grep -q \
    "^tenant $t: acked $n, present $n, missing 0, extra 0, ok$" "$tmp/out"
done
check "verify prints the total" grep -q \
  "^total: 3 tenant(s), acked $acked, present $acked, missing 0, extra 0, 0 wrong value(s), 0 hole(s)$" \
  "$tmp/out"
ok "verify --expect-complete" verify "${c[@]}" --ack-log "$log" \
  --expect-complete
ok "verify --json" verify "${c[@]}" --ack-log "$log" --json
json_check "verify --json" \
  "j['ok'] and j['acked'] == j['present'] == $acked and j['missing'] == j['extra'] == 0 and [t['tenant'] for t in j['tenants']] == ['wl-000', 'wl-001', 'wl-002'] and all(t['ok'] and t['exists'] and t['acked'] == t['present'] and t['holes'] == 0 for t in j['tenants'])"

expected_value wl-001 5 100 >"$tmp/value5"
ok "get record 5 of wl-001" get "${c[@]}" --tenant wl-001 wl/000000000005 --raw
check "the value follows the documented formula" cmp -s "$tmp/value5" "$tmp/out"

# --- resume --------------------------------------------------------------------
before=$(last_n "$log" wl-000)
ok "workload resumes on the same ack log" "${w[@]}" --tenants 3 --rate 300 \
  --duration 1 --json
json_check "the resumed run starts after the logged writes" \
  "[t['first_n'] for t in j['tenants']][0] == $before + 1 and all(t['last_n'] == t['first_n'] + t['acked'] - 1 for t in j['tenants']) and j['stopped_by'] == 'duration' and j['failures'] == 0"
check "the resumed log stays contiguous" contiguous "$log"
ok "verify after resume" verify "${c[@]}" --ack-log "$log" --expect-complete
before=$(last_n "$log" wl-001)
printf 'wl-001 %s' "$((before + 500))" >>"$log"
ok "workload continues a log with a torn last line" "${w[@]}" --tenants 3 \
  --rate 300 --duration 1 --json
json_check "the torn line does not count" \
  "j['tenants'][1]['first_n'] == $before + 1"
check "workload cut off the torn line before appending" contiguous "$log"

# --- rate 0, bigger values, more tenants than threads ------------------------------
biglog=$tmp/big.log
ok "workload: 5 tenants as fast as possible, 1 KiB values" workload "${c[@]}" \
  --ack-log "$biglog" --tenant-prefix big --tenants 5 --rate 0 --duration 1 \
  --value-size 1KiB --json
json_check "every tenant was written" \
  "[t['tenant'] for t in j['tenants']] == ['big-000', 'big-001', 'big-002', 'big-003', 'big-004'] and all(t['acked'] > 0 for t in j['tenants'])"
check "the big log is contiguous" contiguous "$biglog"
expected_value big-003 7 1024 >"$tmp/value7"
ok "get record 7 of big-003" get "${c[@]}" --tenant big-003 wl/000000000007 --raw
check "a 1 KiB value follows the formula" cmp -s "$tmp/value7" "$tmp/out"
ok "verify the big log" verify "${c[@]}" --ack-log "$biglog" --expect-complete

# --- SIGTERM, and a cluster or ack log in use -------------------------------------
"$coffer" "${w[@]}" --tenants 3 --rate 200 --duration 0 >"$tmp/bg.out" \
  2>"$tmp/bg.err" &
bg=$!
started "$bg"
check "the background workload writes" wait_for_lines "$log"
fails "verify while a workload holds the cluster" 1 "Busy" \
  verify "${c[@]}" --ack-log "$log"
ok "init a second cluster" init --data "$tmp/data2" --key-file "$key" \
  --cluster-id c2 --region eu-west-1 --geography eu
fails "a second workload on the same ack log" 1 \
  "Busy: ack log .* is in use by another workload" workload --data "$tmp/data2" \
  --key-file "$key" --ack-log "$log" --tenants 1 --rate 1 --duration 1
stop "$bg" TERM
check "SIGTERM stops the workload with status 0" test "$stop_rc" -eq 0
check "SIGTERM: the summary says so" grep -q "^stopped by: *SIGTERM$" "$tmp/bg.out"
check "SIGTERM: nothing on stderr" test ! -s "$tmp/bg.err"
check "the log is contiguous after SIGTERM" contiguous "$log"
ok "verify after SIGTERM" verify "${c[@]}" --ack-log "$log" --expect-complete

# --- SIGKILL -------------------------------------------------------------------
# The ack log lists only writes Put acknowledged, and RocksDB writes a write
# to its WAL (in the OS page cache) before Put returns: a killed process loses
# none of them, even without --sync (which is needed only against power loss or
# a kernel crash). The write in flight may be stored without its ack line:
# "extra", which verify allows.
"$coffer" "${w[@]}" --tenants 3 --rate 0 --duration 0 >/dev/null 2>&1 &
bg=$!
started "$bg"
check "the workload to be killed writes" wait_for_lines "$log"
sleep 1
stop "$bg" KILL
ok "verify after SIGKILL" verify "${c[@]}" --ack-log "$log" --expect-complete
check "SIGKILL lost no acknowledged write" \
  grep -Eq "^total: 3 tenant\(s\), acked [0-9]+, present [0-9]+, missing 0, extra [0-9]+, 0 wrong value\(s\), 0 hole\(s\)$" \
  "$tmp/out"
ok "workload resumes after SIGKILL" "${w[@]}" --tenants 3 --rate 300 \
  --duration 1
check "the log is contiguous after SIGKILL and resume" contiguous "$log"
ok "verify after resuming a killed run" verify "${c[@]}" --ack-log "$log" \
  --expect-complete
check "the resumed run rewrote the unacknowledged record" \
  grep -q "extra 0, 0 wrong" "$tmp/out"

# --- acked writes that are missing ---------------------------------------------
cp "$log" "$tmp/tampered.log"
echo "wl-000 999999" >>"$tmp/tampered.log"
present=$(last_n "$log" wl-000)
v=(verify "${c[@]}" --ack-log "$tmp/tampered.log")
ok "verify allows missing writes by default" "${v[@]}"
check "verify reports the missing writes" grep -q \
  "^tenant wl-000: acked 999999, present $present, missing $((999999 - present)), extra 0, ok$" \
  "$tmp/out"
fails "verify --expect-complete with missing writes" 1 \
  "$((999999 - present)) acknowledged write\(s\) missing" "${v[@]}" \
  --expect-complete
fails "verify --max-missing below the missing writes" 1 "missing" "${v[@]}" \
  --max-missing 10
ok "verify --max-missing above the missing writes" "${v[@]}" \
  --max-missing 999999

echo "ghost-000 3" >>"$tmp/tampered.log"
ok "verify with a tenant the cluster lacks" "${v[@]}"
check "verify reports the missing tenant" grep -q \
  "^tenant ghost-000: acked 3, present 0, missing 3, extra 0, tenant missing$" \
  "$tmp/out"
ok "verify --json with a missing tenant" "${v[@]}" --json
json_check "verify --json: the missing tenant" \
  "j['ok'] and [(t['tenant'], t['exists'], t['missing']) for t in j['tenants'] if not t['exists']] == [('ghost-000', False, 3)]"

# --- torn and malformed ack logs -------------------------------------------------
cp "$log" "$tmp/torn.log"
printf 'wl-000 999999' >>"$tmp/torn.log"
ok "verify ignores a torn last line" verify "${c[@]}" --ack-log "$tmp/torn.log" \
  --expect-complete
check "verify says it ignored the torn line" \
  grep -q "and a torn last line (ignored)$" "$tmp/out"
bad_lines=("garbage" "wl-000" "wl-000 0" "wl-000 -1" "wl-000 01" "wl-000 1 2"
  "Bad 1" "wl-000  1" "" "wl-000 1000000000000" $'wl-000 1\r')
for bad in "${bad_lines[@]}"; do
  { head -n 3 "$log"; printf '%s\n' "$bad"; sed -n '4,6p' "$log"; } \
    >"$tmp/bad.log"
  fails "verify of a log with line '$bad'" 1 "ack log .* line 4: malformed" \
    verify "${c[@]}" --ack-log "$tmp/bad.log"
done
{ head -n 3 "$log"; echo garbage; } >"$tmp/bad.log"
fails "workload refuses to continue a malformed log" 1 "line 4: malformed" \
  workload "${c[@]}" --ack-log "$tmp/bad.log" --tenants 1 --rate 1 --duration 1

# --- holes ---------------------------------------------------------------------
ok "save record 10 of wl-001" get "${c[@]}" --tenant wl-001 wl/000000000010 --raw
cp "$tmp/out" "$tmp/record10"
ok "delete record 10 of wl-001" delete "${c[@]}" --tenant wl-001 \
  wl/000000000010
fails "verify finds the hole" 1 "0 wrong value\(s\) and 1 hole\(s\)" \
  verify "${c[@]}" --ack-log "$log"
check "verify names the hole" grep -q \
  "^tenant wl-001 record 10: hole (record 11 is present)$" "$tmp/out"
check "verify's tenant line shows the hole" grep -Eq \
  "^tenant wl-001: acked [0-9]+, present [0-9]+, missing 1, extra 0, 1 hole\(s\) from record 10$" \
  "$tmp/out"
ok "delete records 11 and 12 too" delete "${c[@]}" --tenant wl-001 \
  wl/000000000011
ok "delete record 12" delete "${c[@]}" --tenant wl-001 wl/000000000012
fails "verify --json finds the wider hole" 1 "1 hole" \
  verify "${c[@]}" --ack-log "$log" --json
json_check "verify --json: the hole" \
  "not j['ok'] and [(t['tenant'], t['holes'], t['first_hole'], t['missing']) for t in j['tenants'] if not t['ok']] == [('wl-001', 1, 10, 3)] and j['tenants'][1]['problems'] == ['tenant wl-001 records 10..12: hole (record 13 is present)']"
stdin=$tmp/record10 ok "restore record 10" put "${c[@]}" --tenant wl-001 \
  wl/000000000010 -
for n in 11 12; do
  expected_value wl-001 $n 100 >"$tmp/record"
  stdin=$tmp/record ok "restore record $n" put "${c[@]}" --tenant wl-001 \
    wl/0000000000$n -
done
ok "verify after restoring the hole" verify "${c[@]}" --ack-log "$log" \
  --expect-complete

# The last acked record missing is not a hole: the records still form 1..k.
last=$(last_n "$log" wl-002)
last_key=$(printf 'wl/%012d' "$last")
ok "save the last record of wl-002" get "${c[@]}" --tenant wl-002 "$last_key" \
  --raw
cp "$tmp/out" "$tmp/last"
ok "delete the last record of wl-002" delete "${c[@]}" --tenant wl-002 \
  "$last_key"
ok "verify: a lost last record is missing, not a hole" verify "${c[@]}" \
  --ack-log "$log"
check "verify counts it missing" grep -q \
  "^tenant wl-002: acked $last, present $((last - 1)), missing 1, extra 0, ok$" \
  "$tmp/out"
fails "verify --expect-complete: one missing" 1 \
  "^coffer: verify: 1 acknowledged write\(s\) missing, more than the 0 allowed$" \
  verify "${c[@]}" --ack-log "$log" --expect-complete
stdin=$tmp/last ok "restore the last record" put "${c[@]}" --tenant wl-002 \
  "$last_key" -

# --- wrong values ----------------------------------------------------------------
cp "$tmp/value5" "$tmp/good"
ok "overwrite record 5 of wl-001" put "${c[@]}" --tenant wl-001 \
  wl/000000000005 wrong
fails "verify finds the wrong value" 1 "1 wrong value\(s\) and 0 hole\(s\)" \
  verify "${c[@]}" --ack-log "$log"
check "verify names the record" \
  grep -q "^tenant wl-001 record 5: wrong value$" "$tmp/out"
check "verify's tenant line shows it" \
  grep -Eq "^tenant wl-001: .*, 1 wrong value\(s\)$" "$tmp/out"
head -c 60 "$tmp/good" >"$tmp/truncated"
stdin=$tmp/truncated ok "put a truncated value" put "${c[@]}" --tenant wl-001 \
  wl/000000000005 -
fails "verify finds a truncated value" 1 "1 wrong value" \
  verify "${c[@]}" --ack-log "$log"
expected_value wl-001 6 100 >"$tmp/other"
stdin=$tmp/other ok "put record 6's value as record 5" put "${c[@]}" \
  --tenant wl-001 wl/000000000005 -
fails "verify finds another record's value" 1 "1 wrong value" \
  verify "${c[@]}" --ack-log "$log"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[50] ^= 1; open(sys.argv[2], "wb").write(d)' \
  "$tmp/good" "$tmp/flipped"
stdin=$tmp/flipped ok "put a value with one bit flipped" put "${c[@]}" \
  --tenant wl-001 wl/000000000005 -
fails "verify finds a flipped bit" 1 "1 wrong value" \
  verify "${c[@]}" --ack-log "$log"
stdin=$tmp/good ok "restore record 5" put "${c[@]}" --tenant wl-001 \
  wl/000000000005 -
ok "put a foreign key under wl/" put "${c[@]}" --tenant wl-000 wl/x other
fails "verify finds the foreign key" 1 "1 wrong value" \
  verify "${c[@]}" --ack-log "$log"
check "verify names the foreign key" \
  grep -q "^tenant wl-000 key 'wl/x': not a workload key$" "$tmp/out"
ok "delete the foreign key" delete "${c[@]}" --tenant wl-000 wl/x
ok "verify once everything is restored" verify "${c[@]}" --ack-log "$log" \
  --expect-complete

# --- failed writes are retried ----------------------------------------------------
ok "a tenant with a 64 KiB quota" tenant create "${c[@]}" quota-000 \
  --quota 64KiB
run workload "${c[@]}" --ack-log "$tmp/quota.log" --tenant-prefix quota \
  --tenants 1 --rate 0 --duration 2 --value-size 4KiB
checks=$((checks + 1))
if [[ $rc -ne 0 ]]; then fail "workload over quota: exit $rc, stderr: $err"; fi
last=$(last_n "$tmp/quota.log" quota-000)
check "writes over quota are reported, one line each" grep -Eqx \
  "coffer: workload: tenant 'quota-000' write $((last + 1)): QuotaExceeded: .*" \
  "$tmp/err"
check "only that write is retried" test \
  "$(grep -c "write $((last + 1)): QuotaExceeded" "$tmp/err")" = \
  "$(wc -l <"$tmp/err")"
check "the summary counts the failures" \
  grep -q "^failures: *$(wc -l <"$tmp/err")$" "$tmp/out"
check "the quota log is contiguous" contiguous "$tmp/quota.log"
ok "verify the quota log" verify "${c[@]}" --ack-log "$tmp/quota.log" \
  --expect-complete

# --- a replica refuses writes -------------------------------------------------------
if "$coffer" init --help | grep -q -- "--replica"; then
  r=(--data "$tmp/replica" --key-file "$key")
  ok "init a replica" init "${r[@]}" --cluster-id c3 --region eu-north-1 \
    --geography eu --replica
  run workload "${r[@]}" --ack-log "$tmp/replica.log" --tenants 1 --rate 1 \
    --duration 1
  checks=$((checks + 1))
  if [[ $rc -ne 1 ]] || ! grep -q "ReadOnly" "$tmp/err"; then
    fail "workload on a replica: exit $rc, want 1 and ReadOnly: $err"
  fi
  ok "verify on a replica" verify "${r[@]}" --ack-log "$log"
  check "the replica has none of the tenants" \
    test "$(grep -c ", tenant missing$" "$tmp/out")" = 3
fi

# --- no plaintext at rest -------------------------------------------------------------
ok "get record 1 of big-000" get "${c[@]}" --tenant big-000 wl/000000000001 \
  --raw
cp "$tmp/out" "$tmp/big1"
printf 'wl-001|5|100|' >"$tmp/header5"
printf 'wl/000000000005' >"$tmp/key5"
mkdir "$tmp/plain"
{ head -c 4096 /dev/urandom; cat "$tmp/value5"; } >"$tmp/plain/file"
found=$(no_file_contains "$tmp/plain" "$tmp/value5" 2>&1 || true)
check "the plaintext search finds what it looks for" \
  test "$found" = "$tmp/plain/file holds b'$(head -c 40 "$tmp/value5")'"
check "no file of the cluster holds a value, a header or a key" \
  no_file_contains "$data" "$tmp/value5" "$tmp/header5" "$tmp/key5" \
  "$tmp/big1" "$tmp/value7"

echo "workload_test: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
