#!/usr/bin/env bash
# The e2e specs on a kind cluster, for machines with Docker and internet access (CI elsewhere).
# Needs: docker, kind, helm, Node.js 20. Creates the cluster, builds and loads the gitfs-csi and git
# server images, runs e2e/specs against it, and deletes the cluster on exit.
#   E2E_SIDECAR_REGISTRY  where the cluster pulls the Kubernetes sig-storage CSI sidecars from (required)
#   KIND_CLUSTER          cluster name (default gitfs-csi-e2e)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${E2E_SIDECAR_REGISTRY:?set E2E_SIDECAR_REGISTRY to the registry path of the sig-storage CSI sidecar images}"
cluster="${KIND_CLUSTER:-gitfs-csi-e2e}"
trap 'kind delete cluster --name "$cluster" >/dev/null 2>&1 || true' EXIT

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
image="$(deploy/image/build.sh)"
upgrade_image="${image%:*}:${image##*:}-upgrade"
docker tag "$image" "$upgrade_image"
git_server="gitfs-csi-e2e/git-server:dev"
docker build -q -t "$git_server" e2e/images/git-server >/dev/null

kind create cluster --name "$cluster" --wait 120s
kind load docker-image --name "$cluster" "$image" "$upgrade_image"
export KUBECONFIG="$(mktemp)"
kind get kubeconfig --name "$cluster" > "$KUBECONFIG"
# kind's node reaches ports published on this machine through the gateway of the kind network.
export E2E_HOST_ADDRESS="$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | tr ' ' '\n' | grep -m1 -E '^[0-9.]+$')"
export E2E_IMAGE="$image" E2E_UPGRADE_IMAGE="$upgrade_image" E2E_GIT_SERVER_IMAGE="$git_server" E2E_KUBELET_DIR=/var/lib/kubelet
export TESTCONTAINERS_RYUK_DISABLED=true
node --test --test-concurrency=1 --test-timeout=900000 --test-force-exit dist/e2e/specs/*.test.js
