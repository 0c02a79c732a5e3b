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
#        bash bench/openssl_speed_compare.sh --help
#   --rounds 5, --seconds 2 (per side and round; openssl speed takes whole
#   seconds), --bytes 16384 (one of micro_bench's BM_CtrCipherStream sizes:
#   128, 2048, 4096, 16384, 65536, 1048576): positive integers.
set -euo pipefail

me=openssl_speed_compare.sh
usage() {  # the header comment above, on stdout
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
}
die() { echo "$me: $*" >&2; exit 2; }

[[ ${1:-} == -h || ${1:-} == --help ]] && usage
build=${1:-}
[[ -n $build && $build != -* ]] ||
  die "usage: bash bench/openssl_speed_compare.sh BUILD_DIR [options] (--help for the options)"
shift
rounds=5
seconds=2
bytes=16384
# value OPTION VALUE...: VALUE, or an error if the option has none.
value() { [[ $# -ge 2 ]] || die "$1 needs a value"; printf '%s' "$2"; }
# positive OPTION VALUE: VALUE must be a positive integer (below 10^9).
positive() {
  [[ $2 =~ ^[0-9]{1,9}$ && $((10#$2)) -gt 0 ]] ||
    die "$1 must be a positive integer, not '$2'"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$(value "$@"); positive "$1" "$rounds"; shift 2 ;;
    --seconds) seconds=$(value "$@"); positive "$1" "$seconds"; shift 2 ;;
    --bytes) bytes=$(value "$@"); positive "$1" "$bytes"; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown option '$1' (--help for the options)" ;;
  esac
done
rounds=$((10#$rounds)) seconds=$((10#$seconds)) bytes=$((10#$bytes))
micro="$build/bench/micro_bench"
[[ -x $micro ]] || { echo "$me: missing $micro (build with COFFER_BUILD_BENCH=ON)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "$me: openssl missing" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$me: python3 missing" >&2; exit 1; }

# no_such_size: micro_bench has no BM_CtrCipherStream/$bytes; names the ones it has.
no_such_size() {
  local sizes
  sizes=$("$micro" --benchmark_list_tests --benchmark_filter='^BM_CtrCipherStream/' 2>/dev/null |
    sed -n 's|^BM_CtrCipherStream/||p' | paste -sd, - | sed 's/,/, /g')
  echo "$me: micro_bench ran no BM_CtrCipherStream benchmark of that size" \
    "(--bytes $bytes); it has ${sizes:-none}" >&2
  exit 2
}
"$micro" --benchmark_list_tests --benchmark_filter="^BM_CtrCipherStream/$bytes\$" 2>/dev/null |
  grep -q . || no_such_size

# Bytes per second from openssl speed's last line ("AES-256-CTR  7718032.73k").
openssl_side() {
  local out line
  if ! out=$(openssl speed -evp aes-256-ctr -bytes "$bytes" -seconds "$seconds" 2>&1); then
    echo "$me: openssl speed -evp aes-256-ctr -bytes $bytes -seconds $seconds failed:" >&2
    grep -v '^ *$' <<<"$out" | tail -n 3 >&2
    exit 1
  fi
  line=$(grep -iE '^aes-256-ctr +[0-9.]+k' <<<"$out" | tail -n 1)
  if [[ -z $line ]]; then
    echo "$me: cannot parse openssl speed output:" >&2
    grep -v '^ *$' <<<"$out" | tail -n 3 >&2
    exit 1
  fi
  awk '{v = $2; sub(/k$/, "", v); printf "%.0f\n", v * 1000}' <<<"$line"
}

# Bytes per second of micro_bench's BM_CtrCipherStream/$bytes.
stream_side() {
  local out
  out=$("$micro" --benchmark_filter="^BM_CtrCipherStream/$bytes\$" \
    --benchmark_min_time="$seconds" --benchmark_format=json 2>"$err") || {
    echo "$me: micro_bench failed: $(tail -n 1 "$err")" >&2
    exit 1
  }
  [[ -n $out ]] || no_such_size
  python3 -c 'import json, sys
try:
    runs = json.load(sys.stdin)["benchmarks"]
    bps = "%.0f" % runs[0]["bytes_per_second"]
except (ValueError, KeyError, IndexError, TypeError) as e:
    sys.exit("'"$me"': cannot parse micro_bench output: %r" % e)
print(bps)' <<<"$out"
}

err=$(mktemp)
trap 'rm -f "$err"' EXIT
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
