#!/usr/bin/env bash
# Installs what ordermesh needs on Debian 12 and builds it.
#
#   scripts/setup.sh               install missing packages, configure, build into build/
#   scripts/setup.sh --deps-only   only install missing packages
#   scripts/setup.sh --no-build    install and configure, do not compile
#
# Environment:
#   ORDERMESH_BUILD_DIR   build directory (default build/, or build-asan/ when sanitizing)
#   ORDERMESH_SANITIZE=1  AddressSanitizer + UBSan build (-DORDERMESH_SANITIZE=ON)
#   ORDERMESH_JOBS        parallel compile jobs (default 2)
#   ORDERMESH_BUILD_TARGET  build only this target (default: all)
#
# Safe to run again: packages already installed are not touched (no apt-get update either), and
# an unchanged tree rebuilds in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

DEPS_ONLY=0
NO_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --deps-only) DEPS_ONLY=1 ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev librocksdb-dev rocksdb-tools libspdlog-dev catch2
  libboost-dev libboost-program-options-dev nlohmann-json3-dev libsodium-dev
  # orderd's allocator (CMakeLists.txt, ORDERMESH_ALLOCATOR): tcmalloc
  libgoogle-perftools-dev
  python3 netcat-openbsd clang-format
  # lint for what is not C++ (scripts/test.sh): shell scripts and Python
  shellcheck pyflakes3
  # the fuzz stage of scripts/test.sh (fuzz/): clang with libFuzzer's runtime
  clang libclang-rt-14-dev
  # deploy/ checks (tests/deploy): the Kubernetes manifests' YAML, the systemd unit
  yamllint systemd
  # the cluster CA and node certificates (scripts/gen-certs.sh; libssl comes with libcaf-dev)
  openssl
  # the consensus store of a cluster (docs/ARCHITECTURE.md): etcd and etcdctl
  etcd-server etcd-client
  # the chaos suite's namespaces and nemeses (chaos/, docs/CHAOS.md)
  iproute2 util-linux nftables stress-ng fiu-utils faketime
  # the status page test loads orderd's /status in headless Chromium (tests/system/status_page_test.py)
  chromium
)

is_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]]
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "all ${#PACKAGES[@]} packages present"
    return 0
  fi
  log "installing: ${missing[*]}"
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo not available; install: ${missing[*]}"
    sudo=(sudo)
  fi
  # Wait for another apt/dpkg run instead of failing on its lock.
  local apt_opts=(-o DPkg::Lock::Timeout=600 -o APT::Get::Assume-Yes=true)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -q -y \
    --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    is_installed "$p" || die "package $p still not installed"
  done
}

install_packages
((DEPS_ONLY)) && exit 0

SANITIZE="${ORDERMESH_SANITIZE:-0}"
case "$SANITIZE" in 1|ON|on|true|yes) SANITIZE=ON ;; *) SANITIZE=OFF ;; esac
if [[ "$SANITIZE" == ON ]]; then
  BUILD_DIR="${ORDERMESH_BUILD_DIR:-build-asan}"
else
  BUILD_DIR="${ORDERMESH_BUILD_DIR:-build}"
fi
JOBS="${ORDERMESH_JOBS:-2}"

cmake_args=(-S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DORDERMESH_SANITIZE=$SANITIZE")
if command -v ccache >/dev/null 2>&1; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# The generator is fixed at the first configure; a directory made with another one keeps it.
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  cmake_args+=(-G Ninja)
fi

log "configuring $BUILD_DIR (RelWithDebInfo, sanitize=$SANITIZE)"
cmake "${cmake_args[@]}" || die "cmake configure failed"
((NO_BUILD)) && exit 0

log "building $BUILD_DIR with $JOBS jobs"
start=$SECONDS
cmake --build "$BUILD_DIR" --parallel "$JOBS" ${ORDERMESH_BUILD_TARGET:+--target "$ORDERMESH_BUILD_TARGET"}
log "build done in $((SECONDS - start)) s"
