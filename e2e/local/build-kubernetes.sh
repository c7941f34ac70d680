#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet and kubectl of Kubernetes
# $K8S_VERSION from the Go module proxy, through a wrapper module that pins every staging module
# (k8s.io/api, k8s.io/client-go, …) to the matching v0.x version, as k8s.io/kubernetes's own go.mod
# replaces them with local paths. Also builds the pause image's binary from the same source.
# Output: $E2E_CACHE/kubernetes-$K8S_VERSION/bin (kept between runs: a second run builds nothing).
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
E2E_CACHE="${E2E_CACHE:-/var/cache/gitfs-csi-e2e}"
out="$E2E_CACHE/kubernetes-$K8S_VERSION"
bin="$out/bin"
components=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl)

all_built() {
  [ -x "$bin/pause" ] || return 1
  for c in "${components[@]}"; do [ -x "$bin/$c" ] || return 1; done
}
all_built && exit 0
mkdir -p "$out/module" "$bin"
cd "$out/module"
export GOFLAGS=-mod=mod
source_dir="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
staging_version="v0${K8S_VERSION#v1}"
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
{
  echo "module gitfs-csi.local/kubernetes-build"
  echo
  sed -n 's/^go \(.*\)$/go \1/p' "$source_dir/go.mod"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's|^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*$|\t\1 => \1 '"$staging_version"'|p' "$source_dir/go.mod"
  echo ")"
} > go.mod
printf 'package tools\n\nimport (\n' > tools.go
for c in "${components[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c" >> tools.go; done
printf ')\n' >> tools.go
go mod tidy >/dev/null 2>&1 || go mod tidy
for c in "${components[@]}"; do
  [ -x "$bin/$c" ] && continue
  echo "building $c $K8S_VERSION …" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c"
done
# The pause container: one static C program from the same source tree.
gcc -Os -static -o "$bin/pause" "$source_dir/build/pause/linux/pause.c" "-DVERSION=$K8S_VERSION"
