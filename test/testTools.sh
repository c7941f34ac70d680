#!/usr/bin/env bash
# Tools the suite runs against, beyond what gitfs-csi itself needs: an SSH server (git over ssh) and
# the upstream CSI conformance suite, csi-sanity, built from the Go module proxy. Sourced by
# test/run.sh; installs only what is missing.
set -euo pipefail
missing=()
for pkg in openssh-server openssh-client strace; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
command -v go >/dev/null || missing+=(golang-go)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} …" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"
if ! csi-sanity -version 2>/dev/null | grep -q 'v5.5.0'; then
  echo "building csi-sanity v5.5.0 …" >&2
  GOFLAGS=-mod=mod go install -ldflags "-X main.VERSION=v5.5.0" github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.5.0
fi
if ! helm version --short 2>/dev/null | grep -q '^v3.22.0'; then
  echo "building helm v3.22.0 …" >&2
  GOFLAGS=-mod=mod go install -ldflags "-X helm.sh/helm/v3/internal/version.version=v3.22.0" helm.sh/helm/v3/cmd/helm@v3.22.0
fi
