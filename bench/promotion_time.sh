#!/usr/bin/env bash
# Time to promote a replica with N tenants (issue target: 1,000 tenants in
# about a second), through its running daemon (the way an operator promotes
# after losing the primary region) and offline (no daemon: every tenant's
# position is read from its database).
#
#   bench/promotion_time.sh [COFFER] [N...]      default: build/coffer 1 100 1000
#   bench/promotion_time.sh --help
#
# For each N: a primary (`coffer workload`, N tenants) ships to a replica
# daemon until every tenant has writes there; the primary is killed
# (SIGKILL); `coffer promote` runs against the daemon and is timed from the
# command's start to its exit (wall clock, the receipt included). Then the
# same is repeated with the daemon stopped first (offline promotion).
# Each N is a positive integer. If the replica daemon does not write its
# port within 30 s, or not every tenant has acknowledged writes within
# 60 s + N/10 s, or either process exits first, the script stops with an
# error naming it and the last line of its log (exit 1).
set -euo pipefail
me=promotion_time.sh
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
[[ ${1:-} != -* ]] || { echo "$me: unknown option '$1' (--help for the usage)" >&2; exit 2; }
coffer=$(realpath -m -- "${1:-build/coffer}")
shift || true
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1 100 1000)
for n in "${counts[@]}"; do
  [[ $n =~ ^[0-9]{1,6}$ && $((10#$n)) -gt 0 ]] ||
    { echo "$me: a tenant count must be a positive integer, not '$n'" >&2; exit 2; }
done
[[ -x $coffer && ! -d $coffer ]] ||
  { echo "$me: no coffer binary at $coffer (build first)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  # (reaped here, without bash's notice of a job killed by a signal)
  for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
bash "$src/tools/gen_test_certs.sh" "$work/certs" c1 c2 >/dev/null
"$coffer" keygen --out "$work/k.key" >/dev/null
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# wait_until WHAT PID LOG SECONDS CONDITION...: polls CONDITION until it holds;
# fails (exit 1) naming WHAT, with LOG's last line, if PID exits first or
# SECONDS pass.
wait_until() {
  local what=$1 pid=$2 log=$3 deadline=$((SECONDS + $4)) why
  shift 4
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      why="exited"
    elif ((SECONDS >= deadline)); then
      why="timed out"
    else
      sleep 0.2
      continue
    fi
    echo "$me: $what: $why; last line of its log:" \
      "$(grep -v '^ *$' "$log" 2>/dev/null | tail -n 1)" >&2
    exit 1
  done
}
port_written() { [[ -s $1 ]]; }
all_acked() {  # ACK_LOG N: every one of N tenants has an acknowledged write
  [[ $(cut -d' ' -f1 "$1" 2>/dev/null | sort -u | wc -l) -ge $2 ]]
}

run_one() {  # N MODE(daemon|offline)
  local n=$1 mode=$2 d="$work/$1-$2"
  mkdir -p "$d"
  "$coffer" init --data "$d/p" --key-file "$work/k.key" --cluster-id c1 \
    --region eu-west --geography eu >/dev/null
  "$coffer" init --data "$d/r" --key-file "$work/k.key" --cluster-id c2 \
    --region eu-north --geography eu --replica >/dev/null
  "$coffer" replica serve --data "$d/r" --key-file "$work/k.key" \
    --listen 127.0.0.1:0 --port-file "$d/port" --tls-cert "$work/certs/c2.pem" \
    --tls-key "$work/certs/c2.key" --tls-ca "$work/certs/ca.pem" 2>"$d/r.log" &
  local rp=$!
  pids+=("$rp")
  wait_until "coffer replica serve did not start ($n tenants, $mode)" "$rp" "$d/r.log" 30 \
    port_written "$d/port"
  "$coffer" workload --data "$d/p" --key-file "$work/k.key" --tenants "$n" \
    --rate 2000 --duration 0 --replicate-to "127.0.0.1:$(cat "$d/port")" \
    --tls-cert "$work/certs/c1.pem" --tls-key "$work/certs/c1.key" \
    --tls-ca "$work/certs/ca.pem" --ack-log "$d/a.log" 2>"$d/wl.log" &
  local wl=$!
  pids+=("$wl")
  # Every tenant has acknowledged writes, then 2 s more of shipping.
  wait_until "coffer workload did not get writes acknowledged by every tenant ($n tenants, $mode)" \
    "$wl" "$d/wl.log" $((60 + n / 10)) all_acked "$d/a.log" "$n"
  kill -0 "$rp" 2>/dev/null || {
    echo "$me: coffer replica serve exited ($n tenants, $mode); last line of its log:" \
      "$(grep -v '^ *$' "$d/r.log" | tail -n 1)" >&2
    exit 1
  }
  sleep 2
  kill -9 "$wl" 2>/dev/null || true
  wait "$wl" 2>/dev/null || true
  sleep 0.5
  local key=()
  if [[ $mode == offline ]]; then
    kill -TERM "$rp"
    wait "$rp" || true
    key=(--key-file "$work/k.key")
  fi
  local t0
  t0=$(date +%s%N)
  "$coffer" promote --data "$d/r" "${key[@]}" --json >"$d/receipt.json"
  local wall
  wall=$(ms "$t0")
  [[ $mode == daemon ]] && { wait "$rp" || true; }
  python3 - "$d/receipt.json" "$n" "$mode" "$wall" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{int(sys.argv[2]):>6} tenants  {sys.argv[3]:<8} coffer promote: {int(sys.argv[4]):>6} ms wall"
      f"  (catalog step {r['micros'] / 1000:.1f} ms; {len(r['tenants'])} receipts, via {r['via']})")
PY
  rm -rf "$d"
}

echo "coffer promote, wall time from the command's start to its exit:"
for n in "${counts[@]}"; do
  n=$((10#$n))
  run_one "$n" daemon
  run_one "$n" offline
done
