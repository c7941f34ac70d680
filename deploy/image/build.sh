#!/usr/bin/env bash
# Builds the gitfs-csi image (tag: $IMAGE, default gitfs-csi:<package version>) on this machine and
# prints its name (with --base-image: only the base image's name, built if needed).
# Starts a Docker engine from Debian's docker.io when none answers. When the Dockerfile's base image
# cannot be pulled, builds one locally instead: a minimal Debian root from debootstrap with git, FUSE
# and tini, plus this machine's Node.js and extra CA certificates, imported with `docker import`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

version="$(node -p 'require("./package.json").version')"
IMAGE="${IMAGE:-gitfs-csi:${version}}"
BASE_IMAGE="${BASE_IMAGE:-node:20-bookworm-slim}"
LOCAL_BASE="gitfs-csi-base:node$(node -p 'process.versions.node.split(".")[0]')-bookworm"

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || apt_install docker.io
  echo "starting dockerd …" >&2
  nohup dockerd >/var/log/gitfs-csi-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/gitfs-csi-dockerd.log" >&2; exit 1; }
fi

local_base() {
  if docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then return; fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  local root
  root="$(mktemp -d /var/tmp/gitfs-csi-base.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  echo "building $LOCAL_BASE with debootstrap …" >&2
  debootstrap --variant=minbase --include=ca-certificates,git,fuse3,tini,openssh-client bookworm "$root" >/dev/null
  # This machine's Node.js (and npm, which only the build stage keeps).
  install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # Trust what this machine trusts (a local base is this machine's image): its extra CAs, for git and npm.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  tar -C "$root" -c . | docker import --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$LOCAL_BASE" >/dev/null
}

base="$BASE_IMAGE"
if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
  echo "$base cannot be pulled here; using a local base image" >&2
  local_base
  base="$LOCAL_BASE"
fi
# --base-image: only make sure a base exists and name it (other images here build on it too).
if [ "${1:-}" = "--base-image" ]; then echo "$base"; exit 0; fi

DOCKER_BUILDKIT=0 docker build -q --build-arg "BUILD_IMAGE=$base" --build-arg "RUNTIME_IMAGE=$base" -t "$IMAGE" . >/dev/null
echo "$IMAGE"
