#!/usr/bin/env bash
# Installs what is missing, builds Coffer, and runs the demo or the tests.
#
#   ./build.sh demo        # the end-to-end demonstration (coffer demo)
#   ./build.sh test        # the whole test suite, three times (what CI runs):
#                          # test-plain, then test-asan, then test-tsan
#   ./build.sh test-plain  # the suite in the normal build (./build)
#   ./build.sh test-asan   # the suite under AddressSanitizer + UBSan
#                          # (./build-asan)
#   ./build.sh test-tsan   # the concurrency-heavy tests under ThreadSanitizer
#                          # (./build-tsan; tests/tsan.supp says why each
#                          # suppression is there)
#   ./build.sh build       # just install dependencies and build
#
# Needs Debian 12 and root (or sudo) for the package install. The build goes
# to ./build (override with BUILD_DIR); JOBS sets the parallelism.
set -euo pipefail

mode=${1:-demo}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=${BUILD_DIR:-$here/build}
jobs=${JOBS:-$(nproc)}

packages=(
  cmake g++ make pkg-config
  librocksdb-dev rocksdb-tools
  libssl-dev openssl
  libprotobuf-dev protobuf-compiler
  libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev
  python3
  procps  # ps: the shell tests tell their own live children from reused PIDs
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "build.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

build() {
  cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$build_dir" -j "$jobs"
}

test_plain() {
  build
  (cd "$build_dir" && ctest --output-on-failure -j "$jobs")
}

# Any report fails the test that caused it (the build adds
# -fno-sanitize-recover=all, so UBSan aborts too).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

test_asan() {
  local dir=$here/build-asan
  cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOFFER_SANITIZE=address,undefined
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 1800)
}

# ThreadSanitizer: the tests whose threads share the most state (replication
# shipper and server, lazy tenant open/close, concurrent clients). RocksDB,
# OpenSSL and protobuf come uninstrumented from Debian; tests/tsan.supp lists
# what that makes TSan report falsely, each with its reason.
tsan_tests=(replication_test lazy_open_test concurrency_test)

test_tsan() {
  local dir=$here/build-tsan
  cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOFFER_SANITIZE=thread -DCOFFER_BUILD_BENCH=OFF
  cmake --build "$dir" -j "$jobs" --target "${tsan_tests[@]}"
  local labels
  labels="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  (cd "$dir" &&
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan.supp" \
      ctest --output-on-failure -j "$jobs" --timeout 1800 -L "$labels")
}

case "$mode" in
  demo)
    install_packages
    build
    "$build_dir/coffer" demo
    ;;
  test)
    install_packages
    test_plain
    test_asan
    test_tsan
    ;;
  test-plain)
    install_packages
    test_plain
    ;;
  test-asan)
    install_packages
    test_asan
    ;;
  test-tsan)
    install_packages
    test_tsan
    ;;
  build)
    install_packages
    build
    ;;
  *)
    echo "usage: $0 demo|test|test-plain|test-asan|test-tsan|build" >&2
    exit 2
    ;;
esac
