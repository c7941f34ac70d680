#!/usr/bin/env bash
# Renders deploy/gitfs-csi.yaml from the Helm chart with its default values, for clusters installed
# without Helm (`kubectl apply -f deploy/gitfs-csi.yaml`). A test fails when this file is stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
{
  echo "# gitfs-csi: rendered from charts/gitfs-csi with its default values by deploy/render.sh — do not edit."
  helm template gitfs-csi charts/gitfs-csi --namespace kube-system
} > deploy/gitfs-csi.yaml
