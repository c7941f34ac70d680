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
# csi-sanity v5.5.0 and helm v3.22.0 need Go >= 1.25. An older go (Debian 12's is 1.19) gets a newer
# toolchain from the Go module proxy, where each Go release is published as golang.org/toolchain (the
# module Go >= 1.21 switches to by itself); its zip keeps no file modes, so the binaries are marked
# executable in a copy.
GO_TOOLCHAIN=go1.26.0
GO_NEEDED_MINOR=25
if [ "$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')" -lt "$GO_NEEDED_MINOR" ]; then
  toolchain="$(go env GOPATH)/toolchains/$GO_TOOLCHAIN"
  if [ ! -x "$toolchain/bin/go" ]; then
    echo "$(go env GOVERSION) cannot build csi-sanity and helm (they need go1.$GO_NEEDED_MINOR); fetching $GO_TOOLCHAIN …" >&2
    module_dir="$(cd / && GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$(go env GOARCH)" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    if [ -z "$module_dir" ]; then
      echo "could not fetch $GO_TOOLCHAIN from the Go module proxy: install Go >= 1.$GO_NEEDED_MINOR and run the tests again" >&2
      exit 1
    fi
    rm -rf "$toolchain.tmp" && mkdir -p "$(dirname "$toolchain")"
    cp -r "$module_dir" "$toolchain.tmp" && chmod -R u+w "$toolchain.tmp"
    chmod +x "$toolchain.tmp"/bin/* "$toolchain.tmp"/pkg/tool/*/*
    mv "$toolchain.tmp" "$toolchain"
  fi
  export PATH="$toolchain/bin:$PATH"
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
