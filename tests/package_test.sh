#!/usr/bin/env bash
# Tests the installed CMake package: installs the build tree into a temporary
# prefix, builds tests/package (a consumer using find_package(Coffer) and
# Coffer::coffer) against it, and runs the consumer and the installed tool.
#
# Usage: bash tests/package_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR
# (COFFER_BINARY is unused: the test runs the *installed* coffer.)
set -euo pipefail

src=${2:?usage: package_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
build=${3:?usage: package_test.sh COFFER_BINARY SOURCE_DIR BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Everything installed must run from its own RPATH/RUNPATH, not from a library
# search path inherited from the caller.
unset LD_LIBRARY_PATH

checks=0
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# step DESCRIPTION COMMAND...: runs COMMAND with output in $tmp/log; shows
# the log and stops the test if it fails (later steps depend on it).
step() {
  local what=$1
  shift
  checks=$((checks + 1))
  echo "== $what"
  if ! "$@" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    echo "FAIL: $what: $*" >&2
    exit 1
  fi
}

prefix=$tmp/prefix
step "install the build tree" cmake --install "$build" --prefix "$prefix"

# --- installed layout -----------------------------------------------------------
checks=$((checks + 1))
[[ -f $prefix/include/coffer/cluster.h ]] ||
  fail "missing $prefix/include/coffer/cluster.h"
checks=$((checks + 1))
configs=("$prefix"/lib*/cmake/Coffer/CofferConfig.cmake)
[[ -f ${configs[0]} ]] || fail "missing $prefix/lib*/cmake/Coffer/CofferConfig.cmake"
checks=$((checks + 1))
[[ -x $prefix/bin/coffer ]] || fail "missing $prefix/bin/coffer"

# Public headers must not expose the private dependencies.
checks=$((checks + 1))
if grep -rnE '#[[:space:]]*include[[:space:]]*["<](rocksdb/|openssl/|google/protobuf/)' \
    "$prefix/include/coffer" >"$tmp/leaks"; then
  fail "installed public headers include RocksDB/OpenSSL/protobuf headers:
$(cat "$tmp/leaks")"
fi
checks=$((checks + 1))
if grep -rnE '#[[:space:]]*include[[:space:]]*"' "$prefix/include/coffer" |
    grep -vE '#[[:space:]]*include[[:space:]]*"coffer/' >"$tmp/quoted"; then
  fail "installed public headers include non-Coffer headers with quotes:
$(cat "$tmp/quoted")"
fi

# --- the installed command-line tool -------------------------------------------
checks=$((checks + 1))
if ! "$prefix/bin/coffer" --help >"$tmp/help" 2>&1; then
  fail "installed coffer --help failed (is its RPATH set?): $(cat "$tmp/help")"
fi

# --- a consumer project built against the package -------------------------------
# A fresh configure with only the install prefix on CMAKE_PREFIX_PATH; the
# consumer's build-tree RPATH (CMake adds the directory of the imported
# libcoffer.so) lets it run without LD_LIBRARY_PATH.
# A sanitizer build's library needs the consumer built with the same
# sanitizers (their runtime must come first in the process).
sanitize=$(sed -n 's/^COFFER_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
san_flags=()
[[ -z $sanitize ]] || san_flags=(-DCMAKE_CXX_FLAGS="-fsanitize=$sanitize")
step "configure tests/package" \
  cmake -S "$src/tests/package" -B "$tmp/build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${san_flags[@]}"
step "build tests/package" cmake --build "$tmp/build"

mkdir "$tmp/run"
checks=$((checks + 1))
set +e
"$tmp/build/consumer" "$tmp/run" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  fail "consumer exited $rc: $(cat "$tmp/out" "$tmp/err")"
elif ! grep -qx 'consumer ok' "$tmp/out"; then
  fail "consumer did not print 'consumer ok': $(cat "$tmp/out" "$tmp/err")"
fi
# It must have used the installed library, not the one in the build tree.
checks=$((checks + 1))
if command -v ldd >/dev/null; then
  lib=$(ldd "$tmp/build/consumer" | awk '$1 ~ /^libcoffer\.so/ {print $3}')
  case $lib in
    "$prefix"/*) ;;
    *) fail "consumer resolves libcoffer to '$lib', not under $prefix" ;;
  esac
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures of $checks checks failed" >&2
  exit 1
fi
echo "package_test: all $checks checks passed"
