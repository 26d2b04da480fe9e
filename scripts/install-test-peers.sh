#!/usr/bin/env bash
# Installs the real peers the test suite talks to (Debian packages) and the npm dependencies.
# Idempotent: does nothing when everything is already there. Needs root only to install.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start or call (test/helpers/): registry, clients, broker, tools.
# apache2-utils gives htpasswd; containerd gives ctr; podman (4.3) pulls through the registries.conf.d drop-in.
PACKAGES=(docker-registry skopeo containerd podman mosquitto umoci python3 apache2-utils wrk openssl curl systemd chromium)
# The arm64 release tarball runs under qemu-user; its glibc-linked Node needs an arm64 sysroot
# (/usr/aarch64-linux-gnu: loader, libc, libstdc++, libgcc_s). passwd gives useradd (installer test).
PACKAGES+=(qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross passwd)
# A fresh machine may have no npm at all; Debian's npm is only used to run `npm ci`
# (the project's own Node 24 comes from the `node` devDependency).
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
# promtool (`promtool check metrics`) checks the satellite's Prometheus exposition in the metrics test.
PACKAGES+=(prometheus)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "install-test-peers: missing Debian packages: ${missing[*]}" >&2
    echo "install-test-peers: run this script as root (sudo bash scripts/install-test-peers.sh)" >&2
    exit 1
  fi
  echo "install-test-peers: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

# npm writes node_modules/.package-lock.json at the end of every install; when package-lock.json
# is newer (edited, pulled, checked out), the installed tree may not match it any more.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "install-test-peers: npm ci"
  npm ci
fi
