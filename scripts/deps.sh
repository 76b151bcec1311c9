#!/usr/bin/env bash
# Installs what leasehold needs to build and test on Debian (12 "bookworm"):
# the toolchain, the libraries found by find_package, and etcd for the
# integration tests (and xmllint, which checks the benchmark chart). Does
# nothing when everything is already there.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config libxml2-utils
  libcurl4-openssl-dev rapidjson-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  etcd-server openssl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts etcd as a service on 2379 when it is installed; the tests
# start their own on free ports and need nothing from it.
