#!/usr/bin/env bash
# Time to promote a replica with N tenants (issue target: 1,000 tenants in
# about a second), through its running daemon (the way an operator promotes
# after losing the primary region) and offline (no daemon: every tenant's
# position is read from its database).
#
#   bench/promotion_time.sh [COFFER] [N...]      default: build/coffer 1 100 1000
#
# For each N: a primary (`coffer workload`, N tenants) ships to a replica
# daemon until every tenant has writes there; the primary is killed
# (SIGKILL); `coffer promote` runs against the daemon and is timed from the
# command's start to its exit (wall clock, the receipt included). Then the
# same is repeated with the daemon stopped first (offline promotion).
set -euo pipefail
coffer=$(realpath "${1:-build/coffer}")
shift || true
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1 100 1000)
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
bash "$src/tools/gen_test_certs.sh" "$work/certs" c1 c2 >/dev/null
"$coffer" keygen --out "$work/k.key" >/dev/null
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

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
  until [[ -s $d/port ]]; do sleep 0.1; done
  "$coffer" workload --data "$d/p" --key-file "$work/k.key" --tenants "$n" \
    --rate 2000 --duration 0 --replicate-to "127.0.0.1:$(cat "$d/port")" \
    --tls-cert "$work/certs/c1.pem" --tls-key "$work/certs/c1.key" \
    --tls-ca "$work/certs/ca.pem" --ack-log "$d/a.log" 2>"$d/wl.log" &
  local wl=$!
  pids+=("$wl")
  # Every tenant has acknowledged writes, then 2 s more of shipping.
  until [[ $(cut -d' ' -f1 "$d/a.log" 2>/dev/null | sort -u | wc -l) -ge $n ]]; do
    sleep 0.5
  done
  sleep 2
  kill -9 "$wl"
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
  run_one "$n" daemon
  run_one "$n" offline
done
