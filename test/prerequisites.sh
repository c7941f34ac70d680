#!/usr/bin/env bash
# Installs what gitfs-csi needs on a fresh Debian machine (as root): git, FUSE, mkfs.ext4 (writable
# volumes), a C compiler for the native addon, the npm packages.
# Sourced by demo/run.sh and test/run.sh; safe to run again (installs only what is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
for pkg in git fuse3 util-linux mount e2fsprogs gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} …" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -c /dev/fuse ] || { echo "/dev/fuse is missing: this machine cannot serve FUSE mounts" >&2; exit 1; }

# npm ci when node_modules is absent or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
