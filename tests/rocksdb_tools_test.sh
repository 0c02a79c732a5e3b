#!/usr/bin/env bash
# RocksDB's own tools on an encrypted tenant: Debian's ldb, sst_dump and
# db_bench with libcoffer_rocksdb.so preloaded (--fs_uri=coffer://T@DIR), and
# `coffer ldb`. Plain ldb on the same directory must not read anything.
#
# Usage: bash tests/rocksdb_tools_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail

coffer=${1:?usage: rocksdb_tools_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
build=${3:?usage: rocksdb_tools_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
plugin="$build/libcoffer_rocksdb.so"
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

for tool in ldb sst_dump db_bench; do
  command -v "$tool" >/dev/null || { echo "missing $tool (rocksdb-tools)"; exit 1; }
done
[[ -f $plugin ]] || { echo "missing $plugin"; exit 1; }

key="$tmp/master.key"
data="$tmp/data"
"$coffer" keygen --out "$key" >/dev/null
"$coffer" init --data "$data" --key-file "$key" --cluster-id c1 --region r1 \
  --geography g1 >/dev/null
"$coffer" tenant create --data "$data" --key-file "$key" acme >/dev/null
"$coffer" tenant create --data "$data" --key-file "$key" bench >/dev/null
for i in 1 2 3; do
  "$coffer" put --data "$data" --key-file "$key" --tenant acme \
    "user-key-$i" "secret-value-$i"
done
db="$data/tenants/acme/db"
uri="coffer://acme@$data"
# A sanitizer build's plugin needs its runtime loaded first into these
# uninstrumented tools (and their own leaks are not ours to report).
preload=$plugin
asan_rt=$(ldd "$plugin" | grep -o '/[^ ]*libasan\.so[^ ]*' || true)
[[ -z $asan_rt ]] || preload="$asan_rt $plugin"
tool_asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
with_plugin() {
  COFFER_KEY_FILE="$key" LD_PRELOAD="$preload" ASAN_OPTIONS="$tool_asan" "$@"
}

# coffer ldb: compact (flushes the memtable to a table file), then scan.
check "coffer ldb compact" \
  "$coffer" ldb --data "$data" --key-file "$key" --tenant acme -- compact
out=$("$coffer" ldb --data "$data" --key-file "$key" --tenant acme -- scan)
check "coffer ldb scan shows the data" \
  test "$out" = $'user-key-1 : secret-value-1\nuser-key-2 : secret-value-2\nuser-key-3 : secret-value-3'
out=$("$coffer" ldb --data "$data" --key-file "$key" --tenant acme -- get user-key-2)
check "coffer ldb get" test "$out" = "secret-value-2"

# Plain ldb sees only ciphertext.
set +e
plain=$(ldb --db="$db" scan 2>&1)
plain_rc=$?
set -e
check "plain ldb fails on an encrypted tenant" test $plain_rc -ne 0
check "plain ldb prints no value" bash -c "! grep -q secret-value <<<\"\$1\"" _ "$plain"

# ldb through the plugin reads it.
out=$(with_plugin ldb --fs_uri="$uri" --db="$db" scan 2>&1)
check "ldb via the plugin scans the tenant" grep -q "user-key-3 : secret-value-3" <<<"$out"
set +e
bad=$(COFFER_KEY_FILE="$key" LD_PRELOAD="$preload" ASAN_OPTIONS="$tool_asan" ldb \
  --fs_uri="coffer://nobody@$data" --db="$db" scan 2>&1)
bad_rc=$?
set -e
check "plugin refuses an unknown tenant" test $bad_rc -ne 0
check "plugin names the missing tenant" grep -q "nobody" <<<"$bad"

# sst_dump through the plugin on the table file written by the compaction.
sst=$(ls "$db"/*.sst | head -n 1)
check "a table file exists" test -n "$sst"
out=$(with_plugin sst_dump --fs_uri="$uri" --file="$sst" --command=scan 2>&1)
check "sst_dump via the plugin reads the table" grep -q "secret-value-1" <<<"$out"
check "the table file itself holds no plaintext" bash -c "! grep -q secret-value '$sst'"

# db_bench through the plugin writes encrypted files into tenant bench.
bench_db="$data/tenants/bench/db"
out=$(with_plugin db_bench --fs_uri="coffer://bench@$data" --db="$bench_db" \
  --benchmarks=fillrandom,readrandom --num=5000 --value_size=100 2>&1)
check "db_bench via the plugin runs" grep -q "readrandom *:" <<<"$out"
for f in "$bench_db"/*; do
  name=$(basename "$f")
  case $name in
    LOCK) continue ;;
    LOG | LOG.old*) continue ;;  # db_bench's own info log: see README
  esac
  check "db_bench file $name is encrypted" test "$(head -c 7 "$f")" = CofferF
done

# A revoked tenant is closed to the tools too.
"$coffer" key revoke --data "$data" --key-file "$key" --tenant acme >/dev/null
set +e
err=$("$coffer" ldb --data "$data" --key-file "$key" --tenant acme -- scan 2>&1)
rc=$?
set -e
check "coffer ldb on a revoked tenant exits 1" test $rc -eq 1
check "and says KeyRevoked" grep -q KeyRevoked <<<"$err"

echo "rocksdb_tools_test: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
