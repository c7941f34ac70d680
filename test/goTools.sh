#!/usr/bin/env bash
# Go tools the suite runs against: the upstream CSI conformance suite (csi-sanity), built from
# the Go module proxy. Sourced by test/run.sh; installs only what is missing.
set -euo pipefail
command -v go >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null; }
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"
if ! csi-sanity -version 2>/dev/null | grep -q 'v5.5.0'; then
  echo "building csi-sanity v5.5.0 …" >&2
  GOFLAGS=-mod=mod go install -ldflags "-X main.VERSION=v5.5.0" github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.5.0
fi
