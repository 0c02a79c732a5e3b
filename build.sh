#!/usr/bin/env bash
# Installs what is missing, builds Coffer, and runs the demo or the tests.
#
#   ./build.sh demo    # the end-to-end demonstration (coffer demo)
#   ./build.sh test    # the whole test suite (what CI runs)
#   ./build.sh build   # just install dependencies and build
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

case "$mode" in
  demo)
    install_packages
    build
    "$build_dir/coffer" demo
    ;;
  test)
    install_packages
    build
    (cd "$build_dir" && ctest --output-on-failure -j "$jobs")
    ;;
  build)
    install_packages
    build
    ;;
  *)
    echo "usage: $0 demo|test|build" >&2
    exit 2
    ;;
esac
