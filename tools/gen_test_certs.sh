#!/usr/bin/env bash
# Generates a throwaway CA and certificates for replication tests and the
# demo, with the openssl command. Never use these for real clusters.
#
#   tools/gen_test_certs.sh DIR NAME [NAME...]
#
# Writes DIR/ca.pem (+ ca.key) and, for each NAME, DIR/NAME.pem and
# DIR/NAME.key: an ECDSA P-256 certificate signed by the CA whose common name
# and DNS subject alternative name are NAME (use the cluster id: the replica
# checks the peer's certificate names the cluster it claims to be), plus
# 127.0.0.1 as an IP SAN. Keys are mode 0600.
set -euo pipefail

dir=${1:?usage: gen_test_certs.sh DIR NAME [NAME...]}
shift
[[ $# -ge 1 ]] || { echo "usage: gen_test_certs.sh DIR NAME [NAME...]" >&2; exit 2; }
mkdir -p "$dir"
umask 077

if [[ ! -f $dir/ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 \
    -subj "/CN=coffer-test-ca" 2>/dev/null
fi
for name in "$@"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$name" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.pem" -days 2 -extfile "$dir/$name.ext" \
    2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
done
