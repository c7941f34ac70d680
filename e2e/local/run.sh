#!/usr/bin/env bash
# The e2e specs on a real single-node Kubernetes built on this machine, with no image pulls and no
# internet (see cluster.sh). Builds what is missing (cached under $E2E_CACHE), starts the cluster, loads
# the images into its containerd, runs e2e/specs, and tears everything down on exit, pass or fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
here=e2e/local
E2E_CACHE="${E2E_CACHE:-/var/cache/gitfs-csi-e2e}"
E2E_RUN="${E2E_RUN:-/var/lib/gitfs-csi-e2e}"
export E2E_CACHE E2E_RUN
PROVISIONER_VERSION=v5.3.0

source test/prerequisites.sh
source test/testTools.sh

image="$(deploy/image/build.sh)"
# The same image under a second tag: the upgrade spec rolls the node plugin to it with `helm upgrade`.
upgrade_image="${image%:*}:${image##*:}-upgrade"
docker tag "$image" "$upgrade_image"
base="$(deploy/image/build.sh --base-image)"
git_server=gitfs-csi-e2e/git-server:dev
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$base" -t "$git_server" e2e/images/git-server >/dev/null

# csi-provisioner from the Go module proxy, static, alone in an image. (node-driver-registrar and
# livenessprobe are not served by the proxy: the node plugin registers itself and serves /healthz.)
provisioner="gitfs-csi.local/csi-provisioner:$PROVISIONER_VERSION"
if ! docker image inspect "$provisioner" >/dev/null 2>&1; then
  mkdir -p "$E2E_CACHE/sidecars"
  if [ ! -x "$E2E_CACHE/sidecars/csi-provisioner" ]; then
    # Built inside a wrapper module whose go.sum is the provisioner's own: the proxy's checksum database
    # lacks some of its dependencies, and these sums were verified when the provisioner was published.
    module="$E2E_CACHE/sidecars/provisioner-module"
    mkdir -p "$module"
    printf 'module gitfs-csi.local/sidecars\n\ngo 1.24\n\nrequire github.com/kubernetes-csi/external-provisioner/v5 %s\n' "$PROVISIONER_VERSION" > "$module/go.mod"
    source_dir="$(cd "$module" && GOFLAGS=-mod=mod go mod download -json "github.com/kubernetes-csi/external-provisioner/v5@$PROVISIONER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    install -m 0644 "$source_dir/go.sum" "$module/go.sum"
    (cd "$module" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$E2E_CACHE/sidecars/csi-provisioner" github.com/kubernetes-csi/external-provisioner/v5/cmd/csi-provisioner)
  fi
  "$here/cluster.sh" binary-image "$E2E_CACHE/sidecars/csi-provisioner" "$provisioner"
fi

trap '"$here/cluster.sh" down' EXIT
"$here/cluster.sh" up
for img in "$image" "$upgrade_image" "$provisioner"; do "$here/cluster.sh" load-image "$img"; done

export KUBECONFIG="$E2E_RUN/kubeconfig"
export PATH="$E2E_CACHE/kubernetes-${K8S_VERSION:-v1.34.4}/bin:$PATH"
export E2E_IMAGE="$image" E2E_UPGRADE_IMAGE="$upgrade_image" E2E_GIT_SERVER_IMAGE="$git_server" E2E_KUBELET_DIR="$E2E_RUN/kubelet"
export E2E_SIDECAR_REGISTRY=gitfs-csi.local
export E2E_HELM_SET="sidecars.nodeDriverRegistrar.enabled=false,sidecars.livenessProbe.enabled=false,sidecars.provisioner.image.tag=$PROVISIONER_VERSION,node.stateDir=$E2E_RUN/gitfs-state,node.cacheDir=$E2E_RUN/gitfs-cache"
export E2E_HOST_ADDRESS="$(ip -4 -o route get 10.244.0.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
export TESTCONTAINERS_RYUK_DISABLED=true
node --test --test-concurrency=1 --test-timeout=900000 --test-force-exit dist/e2e/specs/*.test.js
