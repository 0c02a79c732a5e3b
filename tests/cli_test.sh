#!/usr/bin/env bash
# Tests of the `coffer` command-line tool, run against a real cluster.
#
# Usage: bash tests/cli_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
set -euo pipefail

coffer=${1:?usage: cli_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset COFFER_DATA COFFER_KEY_FILE

checks=0
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1
  shift
  checks=$((checks + 1))
  if ! "$@"; then fail "$what"; fi
}

# run ARGS...: runs coffer; sets rc, and out/err to its stdout/stderr.
run() {
  set +e
  "$coffer" "$@" >"$tmp/out" 2>"$tmp/err" <"${stdin:-/dev/null}"
  rc=$?
  set -e
  out=$(tr -d '\0' <"$tmp/out")
  err=$(tr -d '\0' <"$tmp/err")
}

# ok DESCRIPTION ARGS...: coffer ARGS must exit 0.
ok() {
  local what=$1
  shift
  run "$@"
  checks=$((checks + 1))
  if [[ $rc -ne 0 ]]; then fail "$what: exit $rc, stderr: $err"; fi
}

# fails DESCRIPTION CODE PATTERN ARGS...: coffer ARGS must exit CODE with
# exactly one line on stderr matching PATTERN (extended regex).
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
  fi
}

# no_key_in_output: the last command printed no master key bytes, raw or hex.
no_key_in_output() {
  python3 - "$key" "$tmp/out" "$tmp/err" <<'PY'
import sys
key = open(sys.argv[1], "rb").read()
printed = open(sys.argv[2], "rb").read() + open(sys.argv[3], "rb").read()
sys.exit(1 if key in printed or key.hex().encode() in printed.lower() else 0)
PY
}

# json_check DESCRIPTION PYTHON_EXPR: $out must be JSON (checked with
# python3 -m json.tool) and PYTHON_EXPR, over the parsed value j, true.
json_check() {
  checks=$((checks + 1))
  if ! printf '%s' "$out" | python3 -m json.tool >/dev/null 2>&1; then
    fail "$1: not JSON: $out"
  elif ! printf '%s' "$out" |
    python3 -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($2) else 1)"; then
    fail "$1: $2 is false for $out"
  fi
}

key=$tmp/keys/master.key
data=$tmp/data
mkdir -p "$tmp/keys"
c=(--data "$data" --key-file "$key")

# --- help ---------------------------------------------------------------------
for cmd in "" keygen init tenant "tenant create" "tenant info" "tenant drop" \
  "tenant list" "tenant quota" put get delete scan stats demo; do
  # shellcheck disable=SC2086
  ok "help of '$cmd'" $cmd --help
  check "help of '$cmd' shows usage" grep -q "Usage: coffer $cmd" "$tmp/out"
  check "help of '$cmd' has a description" \
    test "$(head -c 400 "$tmp/out" | wc -w)" -ge 12
done

# --- keygen -------------------------------------------------------------------
ok "keygen" keygen --out "$key"
check "key file mode is 0600" test "$(stat -c %a "$key")" = 600
check "key file holds 32 bytes" test "$(stat -c %s "$key")" = 32
check "keygen prints no key material" no_key_in_output
cp "$key" "$tmp/key.copy"
fails "keygen refuses to overwrite" 1 AlreadyExists keygen --out "$key"
check "keygen left the key unchanged" cmp -s "$key" "$tmp/key.copy"
fails "keygen needs --out" 2 "--out" keygen

# --- init ---------------------------------------------------------------------
ok "init" init "${c[@]}" --cluster-id c1 --region eu-west-1 --geography eu \
  --max-tenants 3 --tenant-quota 1MiB --cluster-quota 64MiB
fails "init twice" 1 AlreadyExists init "${c[@]}" --cluster-id c1 \
  --region eu-west-1 --geography eu
fails "init with a bad cluster id" 1 InvalidArgument init \
  --data "$tmp/data2" --key-file "$key" --cluster-id Bad --region r --geography g
mkdir -p "$tmp/inside"
ok "keygen inside a data dir" keygen --out "$tmp/inside/master.key"
fails "init with the key inside the data dir" 1 PermissionDenied init \
  --data "$tmp/inside" --key-file "$tmp/inside/master.key" --cluster-id c2 \
  --region r --geography g
fails "init with a bad SIZE" 2 "12XB" init --data "$tmp/data3" \
  --key-file "$key" --cluster-id c3 --region r --geography g \
  --tenant-quota 12XB
check "a usage error creates nothing" test ! -e "$tmp/data3"

# --- tenants ------------------------------------------------------------------
ok "tenant create acme" tenant create "${c[@]}" acme
ok "tenant create globex" tenant create "${c[@]}" globex
ok "tenant create initech with quota" tenant create "${c[@]}" initech \
  --quota 64KiB
fails "tenant create twice" 1 AlreadyExists tenant create "${c[@]}" acme
fails "tenant create beyond --max-tenants" 1 TenantLimit \
  tenant create "${c[@]}" hooli
ok "tenant list" tenant list "${c[@]}"
check "tenant list prints sorted ids" test "$out" = $'acme\nglobex\ninitech'
ok "tenant list --json" tenant list "${c[@]}" --json
json_check "tenant list --json" 'j == {"tenants": ["acme", "globex", "initech"]}'

# Make room below --max-tenants, so that only the id can be what is wrong.
ok "tenant drop globex" tenant drop "${c[@]}" globex --yes
before=$(find "$data" | sort)
for bad in '../x' 'A' ''; do
  fails "tenant create '$bad'" 1 InvalidArgument tenant create "${c[@]}" "$bad"
done
check "invalid tenant ids create no file" test "$(find "$data" | sort)" = "$before"
check "'../x' escapes nowhere" test ! -e "$tmp/x" -a ! -e "$data/x"
ok "tenant list after invalid ids" tenant list "${c[@]}"
check "invalid tenant ids create no tenant" test "$out" = $'acme\ninitech'
ok "tenant create globex again" tenant create "${c[@]}" globex

ok "tenant info --json" tenant info "${c[@]}" initech --json
json_check "tenant info --json" \
  'j["id"] == "initech" and j["quota"] == 65536 and j["quota_overridden"] and j["key_version"] >= 1'
ok "tenant info" tenant info "${c[@]}" acme
check "tenant info shows the default quota" grep -q "1.0 MiB" "$tmp/out"
fails "tenant info of a missing tenant" 1 NotFound tenant info "${c[@]}" nobody

# --- put / get / delete -------------------------------------------------------
ok "put" put "${c[@]}" --tenant acme user/1 alice
ok "get" get "${c[@]}" --tenant acme user/1
check "get prints the value and a newline" test "$(od -An -c "$tmp/out" | tr -s ' ')" = " a l i c e \n"
ok "get --raw" get "${c[@]}" --tenant acme user/1 --raw
check "get --raw prints exactly the value" test "$(cat "$tmp/out")" = alice -a "$(stat -c %s "$tmp/out")" = 5
ok "put the same key in globex" put "${c[@]}" --tenant globex user/1 bob
ok "get from globex" get "${c[@]}" --tenant globex user/1
check "tenants keep their own values" test "$out" = bob
ok "get from acme again" get "${c[@]}" --tenant acme user/1
check "acme's value is unchanged" test "$out" = alice
ok "put only in acme" put "${c[@]}" --tenant acme only/acme secret
fails "acme's key is absent in globex" 1 "not found" \
  get "${c[@]}" --tenant globex only/acme

printf 'line1\nline2\ttab\001\000bin\377\303\251\n\n' >"$tmp/bin"
head -c 100000 /dev/urandom >>"$tmp/bin"
stdin=$tmp/bin ok "put from stdin" put "${c[@]}" --tenant acme blob -
ok "get --raw of the stdin value" get "${c[@]}" --tenant acme blob --raw
check "stdin value round-trips byte for byte" cmp -s "$tmp/bin" "$tmp/out"

fails "get of an absent key" 1 "not found" get "${c[@]}" --tenant acme nokey
check "get of an absent key prints nothing" test ! -s "$tmp/out"
fails "get from a missing tenant" 1 NotFound get "${c[@]}" --tenant nobody k
fails "put with an empty key" 1 InvalidArgument put "${c[@]}" --tenant acme "" v
ok "delete" delete "${c[@]}" --tenant acme user/1
fails "get after delete" 1 "not found" get "${c[@]}" --tenant acme user/1
ok "globex's key survives acme's delete" get "${c[@]}" --tenant globex user/1

# --- scan ---------------------------------------------------------------------
for k in a/1 a/2 a/3 b/1 b/2 c/1; do
  ok "put $k" put "${c[@]}" --tenant globex "$k" "v-$k"
done
ok "scan" scan "${c[@]}" --tenant globex
check "scan lists every pair in order" test "$out" = \
  "$(printf 'a/1\tv-a/1\na/2\tv-a/2\na/3\tv-a/3\nb/1\tv-b/1\nb/2\tv-b/2\nc/1\tv-c/1\nuser/1\tbob')"
ok "scan --prefix" scan "${c[@]}" --tenant globex --prefix a/
check "scan --prefix" test "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "a/1 a/2 a/3 "
ok "scan --start --end" scan "${c[@]}" --tenant globex --start a/2 --end b/2
check "scan --start --end" test "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "a/2 a/3 b/1 "
ok "scan --limit" scan "${c[@]}" --tenant globex --limit 2
check "scan --limit" test "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "a/1 a/2 "
ok "scan --json --prefix" scan "${c[@]}" --tenant globex --prefix b/ --json
json_check "scan --json --prefix" \
  'j["tenant"] == "globex" and j["entries"] == [{"key": "b/1", "value": "v-b/1"}, {"key": "b/2", "value": "v-b/2"}] and not j["truncated"]'
ok "scan --json --limit" scan "${c[@]}" --tenant globex --json --limit 1
json_check "scan --json --limit" 'len(j["entries"]) == 1 and j["truncated"]'
head -c 45 "$tmp/bin" >"$tmp/bin45"
stdin=$tmp/bin45 ok "put a binary value" put "${c[@]}" --tenant globex z/bin -
ok "scan --json of binary data" scan "${c[@]}" --tenant globex --prefix z/ --json
json_check "binary data is escaped into valid JSON" \
  'j["entries"][0]["value"].startswith("line1\nline2\ttab\x01\x00bin\xff\u00e9\n\n")'
ok "scan of binary data" scan "${c[@]}" --tenant globex --prefix z/
check "scan prints binary data on one line" test "$(wc -l <"$tmp/out")" = 1

# --- usage errors -------------------------------------------------------------
fails "no subcommand" 2 "subcommand"
fails "tenant without subcommand" 2 "subcommand" tenant
fails "unknown flag" 2 "--bogus" tenant list "${c[@]}" --bogus
fails "unknown subcommand" 2 "unknown subcommand 'frobnicate'" frobnicate
fails "unknown tenant subcommand" 2 "unknown subcommand 'rename'" tenant rename
fails "missing --data" 2 "--data" tenant list --key-file "$key"
fails "missing --key-file" 2 "--key-file" stats --data "$data"
fails "missing TENANT" 2 "TENANT" tenant create "${c[@]}"
fails "missing VALUE" 2 "VALUE" put "${c[@]}" --tenant acme k
fails "bad SIZE" 2 "12XB" tenant create "${c[@]}" newco --quota 12XB
fails "bad --limit" 2 "abc" scan "${c[@]}" --tenant acme --limit abc
fails "negative --limit" 2 "-1" scan "${c[@]}" --tenant acme --limit -1
ok "tenant list after usage errors" tenant list "${c[@]}"
check "a usage error creates no tenant" test "$out" = $'acme\nglobex\ninitech'

# --- environment --------------------------------------------------------------
COFFER_DATA=$data COFFER_KEY_FILE=$key ok "COFFER_DATA and COFFER_KEY_FILE" \
  get --tenant globex user/1
check "environment selects the cluster" test "$out" = bob
COFFER_DATA=$data ok "COFFER_DATA with --key-file" tenant list --key-file "$key"
check "COFFER_DATA with --key-file lists" test "$out" = $'acme\nglobex\ninitech'
COFFER_DATA=$tmp/nowhere ok "--data overrides COFFER_DATA" tenant list "${c[@]}"

# --- drop ---------------------------------------------------------------------
fails "drop without --yes" 1 "--yes" tenant drop "${c[@]}" globex
ok "globex survives a refused drop" get "${c[@]}" --tenant globex user/1
check "globex keeps its data" test "$out" = bob
ok "drop --yes" tenant drop "${c[@]}" globex --yes
check "drop prints a report" grep -Eq "dropped tenant globex: destroyed [0-9]+ key version.*removed [0-9]+ files" "$tmp/out"
ok "tenant list after drop" tenant list "${c[@]}"
check "a dropped tenant is gone" test "$out" = $'acme\ninitech'
fails "get from a dropped tenant" 1 NotFound get "${c[@]}" --tenant globex user/1
fails "drop of a missing tenant" 1 NotFound tenant drop "${c[@]}" globex --yes

# --- quota --------------------------------------------------------------------
head -c 100000 /dev/urandom >"$tmp/big"
stdin=$tmp/big fails "put over quota" 1 QuotaExceeded \
  put "${c[@]}" --tenant initech big -
fails "a rejected put stores nothing" 1 "not found" \
  get "${c[@]}" --tenant initech big
ok "put under quota" put "${c[@]}" --tenant initech small value
ok "tenant quota" tenant quota "${c[@]}" initech --quota 1
stdin=$tmp/bin45 fails "put over a lowered quota" 1 QuotaExceeded \
  put "${c[@]}" --tenant initech more -
ok "delete over quota" delete "${c[@]}" --tenant initech small
fails "the delete over quota applied" 1 "not found" \
  get "${c[@]}" --tenant initech small
ok "other tenants are not limited" put "${c[@]}" --tenant acme more value
fails "tenant quota with a bad SIZE" 2 "1QB" tenant quota "${c[@]}" initech \
  --quota 1QB

# --- keys ---------------------------------------------------------------------
ok "keygen another key" keygen --out "$tmp/keys/other.key"
fails "wrong master key" 1 WrongKey tenant list --data "$data" \
  --key-file "$tmp/keys/other.key"
cp "$key" "$tmp/keys/loose.key"
chmod 0644 "$tmp/keys/loose.key"
fails "key file readable by others" 1 PermissionDenied \
  tenant list --data "$data" --key-file "$tmp/keys/loose.key"
fails "missing key file" 1 "." tenant list --data "$data" \
  --key-file "$tmp/keys/none.key"
fails "missing cluster" 1 NotFound tenant list --data "$tmp/nothing" \
  --key-file "$key"
ok "the right key still opens the cluster" get "${c[@]}" --tenant acme blob --raw
check "data intact after wrong-key attempts" cmp -s "$tmp/bin" "$tmp/out"

# --- stats --------------------------------------------------------------------
ok "stats" stats "${c[@]}"
check "stats prints no key material" no_key_in_output
check "stats names the cluster" grep -q "c1" "$tmp/out"
ok "stats --json" stats "${c[@]}" --json
json_check "stats --json" \
  'j["cluster"]["cluster_id"] == "c1" and j["cluster"]["region"] == "eu-west-1" and j["cluster"]["limits"]["max_tenants"] == 3 and j["stats"]["tenants"] == 2'

# --- demo ---------------------------------------------------------------------
ok "demo" demo
check "demo reports no plaintext" grep -q "^   0 files contain plaintext" "$tmp/out"
check "demo removes its directory" grep -q "^Removed /tmp/coffer-demo-" "$tmp/out"
demo_dir=$(sed -n 's/^coffer demo: working in //p' "$tmp/out")
check "demo's directory is gone" test -n "$demo_dir" -a ! -e "$demo_dir"
ok "demo --dir" demo --dir "$tmp/demo"
check "demo --dir keeps the directory" test -d "$tmp/demo/data" -a -f "$tmp/demo/keys/master.key"
fails "demo --dir refuses a non-empty directory" 1 "not empty" demo --dir "$tmp/demo"

echo "cli_test: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
