#!/usr/bin/env bash
# Coffer's cipher stream against `openssl speed -evp aes-256-ctr` on 16 KiB
# buffers, run alternately for R rounds; prints the ratio stream/openssl as
# the median of the per-round pairs, with min and max.
#
# The stream side is micro_bench's BM_CtrCipherStream/16384: one
# CtrCipherStream::Encrypt call per buffer (set the counter for the file
# offset, one EVP_EncryptUpdate). openssl speed prints thousands of bytes per
# second ("16384.00k" = 16,384,000 B/s); both are converted to bytes/s.
#
# Usage: bash bench/openssl_speed_compare.sh BUILD_DIR [--rounds R]
#          [--seconds S] [--bytes N]
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

build=${1:-}
[[ -n $build && $build != -* ]] || usage
shift
rounds=5
seconds=2
bytes=16384
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "openssl_speed_compare.sh: unknown option $1" >&2; usage ;;
  esac
done
micro="$build/bench/micro_bench"
[[ -x $micro ]] || { echo "missing $micro (build with COFFER_BUILD_BENCH=ON)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl missing" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 1; }

# Bytes per second from openssl speed's last line ("AES-256-CTR  7718032.73k").
openssl_side() {
  local out line
  out=$(openssl speed -evp aes-256-ctr -bytes "$bytes" -seconds "$seconds" 2>/dev/null)
  line=$(grep -iE '^aes-256-ctr +[0-9.]+k' <<<"$out" | tail -n 1)
  [[ -n $line ]] || { echo "cannot parse openssl speed output:" >&2; echo "$out" >&2; exit 1; }
  awk '{v = $2; sub(/k$/, "", v); printf "%.0f\n", v * 1000}' <<<"$line"
}

stream_side() {
  "$micro" --benchmark_filter="^BM_CtrCipherStream/$bytes\$" \
    --benchmark_min_time="$seconds" --benchmark_format=json 2>/dev/null |
    python3 -c 'import json, sys
runs = json.load(sys.stdin)["benchmarks"]
if not runs: sys.exit("micro_bench ran no BM_CtrCipherStream benchmark of that size")
print("%.0f" % runs[0]["bytes_per_second"])'
}

echo "$(openssl version); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs"
echo "buffer $bytes bytes, $seconds s per side, $rounds rounds, alternating"
results=()
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 1)); then
    o=$(openssl_side); s=$(stream_side)
  else
    s=$(stream_side); o=$(openssl_side)
  fi
  awk -v r="$r" -v n="$rounds" -v o="$o" -v s="$s" 'BEGIN {
    printf "round %d/%d: openssl speed %.1f MB/s, cipher stream %.1f MB/s\n", r, n, o / 1e6, s / 1e6 }'
  results+=("$o $s")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
pairs, o_all, s_all = [], [], []
for line in sys.stdin:
    o, s = map(float, line.split())
    pairs.append(s / o); o_all.append(o); s_all.append(s)
print("ratio stream/openssl-speed aes-256-ctr : median %.3f  min %.3f  max %.3f"
      "  (%d pairs; median MB/s openssl %.1f, stream %.1f)" % (
          statistics.median(pairs), min(pairs), max(pairs), len(pairs),
          statistics.median(o_all) / 1e6, statistics.median(s_all) / 1e6))'
