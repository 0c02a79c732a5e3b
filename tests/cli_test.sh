#!/usr/bin/env bash
# Tests of the `coffer` command-line tool, run against a real cluster.
#
# Usage: bash tests/cli_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]
set -euo pipefail

coffer=${1:?usage: cli_test.sh COFFER_BINARY [SOURCE_DIR] [BUILD_DIR]}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

# no_key_in_output [KEY_FILE]: the last command printed no bytes of the key in
# KEY_FILE (default: the cluster's master key $key), raw or hex.
no_key_in_output() {
  python3 - "${1:-$key}" "$tmp/out" "$tmp/err" <<'PY'
import sys
key = open(sys.argv[1], "rb").read()
printed = open(sys.argv[2], "rb").read() + open(sys.argv[3], "rb").read()
sys.exit(1 if key in printed or key.hex().encode() in printed.lower() else 0)
PY
}

key=$tmp/keys/master.key
data=$tmp/data
mkdir -p "$tmp/keys"
c=(--data "$data" --key-file "$key")

# --- help ---------------------------------------------------------------------
for cmd in "" keygen init tenant "tenant create" "tenant info" "tenant drop" \
  "tenant list" "tenant quota" put get delete scan stats key \
  "key rotate-master" "key rotate" "key revoke" "key restore" "key status" \
  audit "audit show" "audit verify" demo; do
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
fails "key without subcommand" 2 "subcommand" key
fails "audit without subcommand" 2 "subcommand" audit
fails "unknown flag" 2 "--bogus" tenant list "${c[@]}" --bogus
fails "unknown subcommand" 2 "unknown subcommand 'frobnicate'" frobnicate
fails "unknown tenant subcommand" 2 "unknown subcommand 'rename'" tenant rename
fails "missing --data" 2 "--data" tenant list --key-file "$key"
fails "missing --key-file" 2 "--key-file or --key-dir is required" \
  stats --data "$data"
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
# A FIFO in place of the key file is refused at once (opening one for
# reading used to wait for a writer for ever).
mkfifo -m 0600 "$tmp/keys/fifo.key"
printf '#!/bin/sh\nexec timeout 20 %q "$@"\n' "$coffer" >"$tmp/coffer-20s"
chmod +x "$tmp/coffer-20s"
coffer=$tmp/coffer-20s fails "a FIFO as the key file" 1 \
  "key file .*/fifo.key is not a regular file" \
  tenant list --data "$data" --key-file "$tmp/keys/fifo.key"
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

# --- key status / rotate ------------------------------------------------------
ok "key status --json" key status "${c[@]}" --tenant acme --json
json_check "key status --json shows version 1" \
  'len(j["tenants"]) == 1 and j["tenants"][0]["tenant"] == "acme" and j["tenants"][0]["current_version"] == 1 and [v["version"] for v in j["tenants"][0]["versions"]] == [1] and j["tenants"][0]["versions"][0]["current"] and not j["tenants"][0]["revoked"] and not j["tenants"][0]["own_master_key"] and j["tenants"][0]["master_key_available"]'
ok "key status of every tenant" key status "${c[@]}"
check "key status lists every tenant" \
  test "$(grep '^tenant:' "$tmp/out" | tr -s ' ' | tr '\n' ' ')" = "tenant: acme tenant: initech "
check "key status shows creation times" \
  grep -Eq "^versions: +v1  created 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z \(age [0-9][0-9dhms ]*\)  [0-9]+ files?  \(current\)$" "$tmp/out"
check "key status prints no key material" no_key_in_output
ok "key status --json of every tenant" key status "${c[@]}" --json
json_check "key status --json lists every tenant" \
  '[t["tenant"] for t in j["tenants"]] == ["acme", "initech"]'
fails "key status of a missing tenant" 1 NotFound \
  key status "${c[@]}" --tenant nobody

ok "key rotate --json" key rotate "${c[@]}" --tenant acme --json
json_check "key rotate makes version 2 and keeps version 1" \
  'j["tenant"] == "acme" and j["new_version"] == 2 and not j["rekeyed"] and j["versions_retired"] == [] and [v["version"] for v in j["versions"]] == [1, 2]'
ok "key status after rotate" key status "${c[@]}" --tenant acme --json
json_check "key status shows version 2 after rotate" \
  'j["tenants"][0]["current_version"] == 2 and [(v["version"], v["current"]) for v in j["tenants"][0]["versions"]] == [(1, False), (2, True)]'
ok "key rotate --rekey --json" key rotate "${c[@]}" --tenant acme --rekey --json
json_check "key rotate --rekey retires every older version" \
  'j["new_version"] == 3 and j["rekeyed"] and sorted(j["versions_retired"]) == [1, 2] and [v["version"] for v in j["versions"]] == [3] and j["versions"][0]["files"] > 0'
ok "key status after rekey" key status "${c[@]}" --tenant acme --json
json_check "only the newest version is left" \
  '[v["version"] for v in j["tenants"][0]["versions"]] == [3] and j["tenants"][0]["versions"][0]["files"] > 0'
ok "get after rekey" get "${c[@]}" --tenant acme blob --raw
check "data intact after rekey" cmp -s "$tmp/bin" "$tmp/out"
ok "key rotate" key rotate "${c[@]}" --tenant initech
check "key rotate reports the new version" \
  grep -q "^rotated the data key of tenant initech to version 2 in " "$tmp/out"
check "key rotate lists the versions" grep -Eq "^ +v2  created .*\(current\)$" "$tmp/out"
fails "key rotate of a missing tenant" 1 NotFound \
  key rotate "${c[@]}" --tenant nobody
fails "key rotate without --tenant" 2 "--tenant" key rotate "${c[@]}"

# --- revoke / restore ---------------------------------------------------------
ok "raise initech's quota" tenant quota "${c[@]}" initech --quota 1MiB
ok "key revoke" key revoke "${c[@]}" --tenant acme --reason "lost laptop"
fails "get from a revoked tenant" 1 KeyRevoked get "${c[@]}" --tenant acme blob
check "a refused get prints nothing" test ! -s "$tmp/out"
fails "revoke of a revoked tenant" 1 InvalidArgument \
  key revoke "${c[@]}" --tenant acme --reason again
fails "put to a revoked tenant" 1 KeyRevoked put "${c[@]}" --tenant acme k v
fails "key rotate of a revoked tenant" 1 KeyRevoked \
  key rotate "${c[@]}" --tenant acme
ok "another tenant still writes" put "${c[@]}" --tenant initech during revoke
ok "another tenant still reads" get "${c[@]}" --tenant initech during
check "another tenant reads its value" test "$out" = revoke
ok "key status of a revoked tenant" key status "${c[@]}" --tenant acme --json
json_check "key status shows the revocation and its reason" \
  'j["tenants"][0]["revoked"] and j["tenants"][0]["revoke_reason"] == "lost laptop"'
ok "key status (text) of a revoked tenant" key status "${c[@]}" --tenant acme
check "key status prints the reason" grep -q "^revoked: *yes: lost laptop$" "$tmp/out"
ok "key restore" key restore "${c[@]}" --tenant acme
ok "get after restore" get "${c[@]}" --tenant acme blob --raw
check "data intact after restore" cmp -s "$tmp/bin" "$tmp/out"
fails "restore of a tenant that is not revoked" 1 InvalidArgument \
  key restore "${c[@]}" --tenant acme
fails "revoke of a missing tenant" 1 NotFound \
  key revoke "${c[@]}" --tenant nobody

# --- rotate-master ------------------------------------------------------------
new_key=$tmp/keys/new.key
ok "keygen the new master key" keygen --out "$new_key"
ok "tenant info before rotate-master" tenant info "${c[@]}" acme --json
old_id=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["master_key_id"])')
ok "key rotate-master" key rotate-master "${c[@]}" --new-key-file "$new_key"
check "rotate-master reports the rotation" grep -Eq \
  "^rotated the master key of cluster c1 from $old_id to file-[0-9a-f]{16} in .*: 2 tenant\(s\) re-wrapped, 0 " "$tmp/out"
check "rotate-master says the old key is no longer needed" \
  grep -q "^the old master key $old_id ($key) is no longer needed" "$tmp/out"
check "rotate-master prints no key material" no_key_in_output
check "rotate-master prints no new key material" no_key_in_output "$new_key"
fails "the old master key alone" 1 WrongKey tenant list "${c[@]}"
ok "the new master key opens the cluster" get --data "$data" \
  --key-file "$new_key" --tenant acme blob --raw
check "data intact after rotate-master" cmp -s "$tmp/bin" "$tmp/out"
ok "key status with the new key" key status --data "$data" \
  --key-file "$new_key" --json
new_id=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["tenants"][0]["master_key_id"])')
json_check "every tenant is on the new master key" \
  "all(t['master_key_id'] == '$new_id' != '$old_id' and not t['own_master_key'] for t in j['tenants'])"
ok "rotate-master again" key rotate-master "${c[@]}" --new-key-file "$new_key" --json
json_check "a repeated rotate-master has nothing to do" \
  "j['from_key_id'] == j['to_key_id'] == '$new_id' and j['tenants_rewrapped'] == 0"
fails "rotate-master to a missing key file" 1 NotFound key rotate-master \
  --data "$data" --key-file "$new_key" --new-key-file "$tmp/keys/none.key"
fails "rotate-master without --new-key-file" 2 "--new-key-file" \
  key rotate-master "${c[@]}"
key=$new_key
c=(--data "$data" --key-file "$key")

# --- bring your own key: --key-dir --------------------------------------------
kd=$tmp/keydir
mkdir -m 700 "$kd"
ok "keygen the cluster key into the key dir" keygen --out "$kd/master.key"
ok "keygen acme's own key" keygen --out "$kd/acme-key.key"
b=(--data "$tmp/byok" --key-dir "$kd")
ok "init with --key-dir" init "${b[@]}" --cluster-id byok --region eu-west-1 \
  --geography eu
ok "tenant create --master-key-id" tenant create "${b[@]}" acme \
  --master-key-id acme-key
check "tenant create names the tenant's master key" \
  grep -q "master key acme-key" "$tmp/out"
ok "tenant create on the cluster key" tenant create "${b[@]}" globex
fails "tenant create with a missing master key" 1 NotFound \
  tenant create "${b[@]}" hooli --master-key-id nokey
ok "key status with --key-dir" key status "${b[@]}" --json
json_check "acme has its own key, globex the cluster's" \
  '[(t["tenant"], t["master_key_id"], t["own_master_key"], t["master_key_available"]) for t in j["tenants"]] == [("acme", "acme-key", True, True), ("globex", "master", False, True)]'
check "key status prints no bytes of acme's key" no_key_in_output "$kd/acme-key.key"
ok "put to the BYOK tenant" put "${b[@]}" --tenant acme a/1 alpha
ok "put to the other tenant" put "${b[@]}" --tenant globex g/1 gamma
ok "get from the BYOK tenant" get "${b[@]}" --tenant acme a/1
check "the BYOK tenant reads its value" test "$out" = alpha
chmod 644 "$kd/acme-key.key"
fails "get with the tenant's key readable by others" 1 KeyRevoked \
  get "${b[@]}" --tenant acme a/1
ok "the other tenant reads with acme's key unusable" \
  get "${b[@]}" --tenant globex g/1
check "the other tenant reads its value" test "$out" = gamma
ok "the other tenant writes with acme's key unusable" \
  put "${b[@]}" --tenant globex g/2 delta
ok "key status with acme's key unusable" key status "${b[@]}" --tenant acme --json
json_check "key status shows acme's key unavailable" \
  'not j["tenants"][0]["master_key_available"] and not j["tenants"][0]["revoked"]'
chmod 600 "$kd/acme-key.key"
ok "get once the key is usable again" get "${b[@]}" --tenant acme a/1
check "the BYOK tenant's data is intact" test "$out" = alpha
mv "$kd/acme-key.key" "$tmp/acme-key.saved"
fails "get with the tenant's key removed" 1 KeyRevoked \
  get "${b[@]}" --tenant acme a/1
ok "the other tenant reads with acme's key removed" \
  get "${b[@]}" --tenant globex g/2
check "the other tenant reads its new value" test "$out" = delta
mv "$tmp/acme-key.saved" "$kd/acme-key.key"
ok "get once the key is back" get "${b[@]}" --tenant acme a/1
check "the BYOK tenant's data is intact again" test "$out" = alpha
COFFER_DATA=$tmp/byok COFFER_KEY_DIR=$kd ok "COFFER_KEY_DIR" tenant list
check "COFFER_KEY_DIR selects the key dir" test "$out" = $'acme\nglobex'
fails "--key-file and --key-dir together" 2 "excludes" \
  tenant list "${b[@]}" --key-file "$key"
fails "--default-key-id without --key-dir" 2 "requires --key-dir" \
  tenant list "${c[@]}" --default-key-id master
fails "a missing --default-key-id key" 1 NotFound \
  tenant list "${b[@]}" --default-key-id nokey

# --- audit --------------------------------------------------------------------
me=$(id -un)
ok "audit show" audit show "${c[@]}"
for action in cluster.init tenant.create tenant.drop tenant.quota key.rotate \
  key.rekey key.revoke key.restore key.rotate_master cluster.open; do
  check "audit show lists $action by $me" grep -Eq \
    "^ *[0-9]+  20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z  $me +$action +" \
    "$tmp/out"
done
check "audit show has the revoke reason" \
  grep -Eq "  key\.revoke +tenant:acme +OK +reason: lost laptop$" "$tmp/out"
check "audit show has the refused restore" \
  grep -Eq "  key\.restore +tenant:acme +InvalidArgument +" "$tmp/out"
check "audit show has the wrong-key open, unauthenticated" \
  grep -Eq "  cluster\.open +cluster +WrongKey +\[unauthenticated\] " "$tmp/out"
shown=$(wc -l <"$tmp/out")
ok "audit show --json" audit show "${c[@]}" --json
json_check "audit show --json lists every entry in order" \
  "isinstance(j, list) and len(j) == $shown and [e['seq'] for e in j] == list(range(1, len(j) + 1)) and all(e['actor'] == '$me' for e in j) and {'tenant.create', 'key.rotate', 'key.rekey', 'key.revoke', 'key.restore', 'key.rotate_master'} <= {e['action'] for e in j} and all(set(e) == {'seq', 'time', 'unix_micros', 'actor', 'action', 'target', 'outcome', 'detail'} for e in j)"
fifth=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)[4]["time"])')
ok "audit show --since ISO-8601" audit show "${c[@]}" --json --since "$fifth"
json_check "--since keeps entries at or after T" \
  "j[0]['seq'] == 5 and len(j) == $shown - 4"
ok "audit show --since in the future" audit show "${c[@]}" \
  --since 2099-01-01T00:00:00Z
check "--since in the future shows nothing" test -z "$out"
ok "audit show --json --since in the future" audit show "${c[@]}" --json \
  --since 2099-01-01T00:00:00Z
json_check "--since in the future gives an empty array" 'j == []'
ok "audit show --since unix seconds" audit show "${c[@]}" \
  --since "$(($(date +%s) + 3600))"
check "--since an hour ahead shows nothing" test -z "$out"
ok "audit show --since 1d" audit show "${c[@]}" --since 1d
check "--since 1d shows everything" test "$(wc -l <"$tmp/out")" -eq "$shown"
ok "audit show --since 0" audit show "${c[@]}" --since 0
check "--since 0 shows everything" test "$(wc -l <"$tmp/out")" -eq "$shown"
fails "audit show --since garbage" 2 "'yesterday' is not a time" \
  audit show "${c[@]}" --since yesterday
fails "audit show --since February 30" 2 "not a time" \
  audit show "${c[@]}" --since 2026-02-30T00:00:00Z
check "audit show prints no key material" no_key_in_output

ok "audit verify" audit verify "${c[@]}"
check "audit verify reports the chain" grep -Eq \
  "^audit log verified: [0-9]+ entries, head seq [0-9]+ \(anchored at 0\), [1-9][0-9]* unauthenticated$" \
  "$tmp/out"
head=$(sed -n 's/.*head seq \([0-9]*\).*/\1/p' "$tmp/out")
ok "audit verify --json" audit verify "${c[@]}" --json
json_check "audit verify --json is anchored at the last head" \
  "j['verified'] and j['anchored_seq'] == $head and j['head_seq'] == j['entries'] == $head + 1 and j['unauthenticated'] >= 1"
cp "$data/AUDIT" "$tmp/AUDIT.saved"
python3 - "$data/AUDIT" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    at = data.index(b'"action":"tenant.create"') + len(b'"action":"tenant.cr')
    f.seek(at)
    f.write(b"E")
PY
check "the edit changed one byte" \
  test "$(cmp -l "$tmp/AUDIT.saved" "$data/AUDIT" | wc -l)" = 1
fails "audit verify of an edited log" 1 \
  "^coffer: audit verify: Corruption: .*AUDIT: entry [0-9]+ fails its chained HMAC" \
  audit verify "${c[@]}"
ok "audit show of an edited log" audit show "${c[@]}"
check "audit show shows the edited entry as stored" \
  grep -q " tenant\.crEate " "$tmp/out"
python3 - "$data/AUDIT" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    f.seek(data.index(b'"action":"tenant.crEate"') + len(b'"action":"tenant.cr'))
    f.write(b"e")
PY
ok "audit verify once the byte is restored" audit verify "${c[@]}"

# --- demo ---------------------------------------------------------------------
ok "demo" demo
check "demo reports no plaintext" grep -q "^   0 files contain plaintext" "$tmp/out"
check "demo shows a revoked tenant refused" grep -q "Get('config/plan') -> KeyRevoked" "$tmp/out"
check "demo detects the edited audit byte" grep -q "VerifyAudit -> Corruption" "$tmp/out"
check "demo passes every step" grep -Eq "^All [0-9]+ steps passed" "$tmp/out"
check "demo removes its directory" grep -q "^Removed /tmp/coffer-demo-" "$tmp/out"
demo_dir=$(sed -n 's/^coffer demo: working in //p' "$tmp/out")
check "demo's directory is gone" test -n "$demo_dir" -a ! -e "$demo_dir"
ok "demo --dir" demo --dir "$tmp/demo"
check "demo --dir keeps the directory" test -d "$tmp/demo/data" -a -f "$tmp/demo/keys/master.key"
fails "demo --dir refuses a non-empty directory" 1 "not empty" demo --dir "$tmp/demo"

echo "cli_test: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
