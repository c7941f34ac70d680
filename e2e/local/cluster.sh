#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, with no image pulls and no internet: etcd, containerd,
# runc and the CNI plugins from Debian; kube-apiserver, kube-controller-manager, kube-scheduler,
# kube-proxy and kubelet built by build-kubernetes.sh; a pause image built from source.
# Everything lives under $E2E_RUN (state) and $E2E_CACHE (builds, kept between runs).
#   cluster.sh up     starts it and writes $E2E_RUN/kubeconfig
#   cluster.sh down   stops it and removes every trace (mounts, interfaces, iptables chains, state)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
E2E_CACHE="${E2E_CACHE:-/var/cache/gitfs-csi-e2e}"
E2E_RUN="${E2E_RUN:-/var/lib/gitfs-csi-e2e}"
bin="$E2E_CACHE/kubernetes-$K8S_VERSION/bin"
pki="$E2E_RUN/pki"
logs="$E2E_RUN/logs"
node_name="${NODE_NAME:-gitfs-e2e-node}"
containerd_sock="/run/gitfs-csi-e2e/containerd.sock"
kubelet_dir="$E2E_RUN/kubelet"
service_cidr="10.96.0.0/24"
pod_cidr="10.244.0.0/24"
pause_image="gitfs-csi.local/pause:$K8S_VERSION"

log() { echo "[cluster] $*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The address pods and the API server use for this node: the bridge-facing host address.
node_ip() { ip -4 -o route get 10.244.0.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }

start() {
  local name="$1"; shift
  nohup "$@" >"$logs/$name.log" 2>&1 &
  echo $! >"$E2E_RUN/$name.pid"
}

wait_for() {
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$what did not come up; its log:"; tail -30 "$logs/$what.log" >&2 || true
  return 1
}

make_pki() {
  [ -f "$pki/admin.crt" ] && return
  mkdir -p "$pki"
  local ip; ip="$(node_ip)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=gitfs-e2e-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  cert() { # name, subject, extensions
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 -out "$pki/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:$ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=gitfs-e2e-admin" "extendedKeyUsage=clientAuth"
  cert kubelet "/O=system:nodes/CN=system:node:$node_name" "extendedKeyUsage=clientAuth"
  cert kubelet-serving "/CN=$node_name" "subjectAltName=IP:$ip,IP:127.0.0.1,DNS:$node_name"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  for user in admin kubelet; do
    cat >"$E2E_RUN/$user.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://127.0.0.1:6443", certificate-authority: $pki/ca.crt}}]
users: [{name: $user, user: {client-certificate: $pki/$user.crt, client-key: $pki/$user.key}}]
contexts: [{name: e2e, context: {cluster: e2e, user: $user}}]
current-context: e2e
EOF
  done
  cp "$E2E_RUN/admin.kubeconfig" "$E2E_RUN/kubeconfig"
}

write_configs() {
  mkdir -p "$E2E_RUN/containerd" "$E2E_RUN/cni" /etc/cni/net.d "$(dirname "$containerd_sock")"
  cat >"$E2E_RUN/containerd/config.toml" <<EOF
version = 2
root = "$E2E_RUN/containerd/root"
state = "/run/gitfs-csi-e2e/containerd-state"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Lowering a process's OOM score needs CAP_SYS_RESOURCE, which a sandboxed host may not grant:
  # keep container scores at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E2E_RUN/cni"
EOF
  cat >"$E2E_RUN/cni/10-gitfs-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "gitfs-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "gitfse2e0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
  cat >"$E2E_RUN/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$containerd_sock
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
clusterDomain: cluster.local
clusterDNS: []
staticPodPath: ""
podCIDR: $pod_cidr
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
EOF
}

up() {
  apt_install containerd runc etcd-server containernetworking-plugins iptables openssl gcc libc6-dev docker.io curl
  "$here/build-kubernetes.sh"
  mkdir -p "$E2E_RUN" "$logs" "$kubelet_dir"
  # Volumes with Bidirectional propagation (the CSI node plugin's) need a shared mount beneath them,
  # as a systemd host has; make the run directory one.
  if ! grep -qE " $E2E_RUN .*shared:" /proc/self/mountinfo; then
    mount --bind "$E2E_RUN" "$E2E_RUN"
    mount --make-rshared "$E2E_RUN"
  fi
  make_pki
  write_configs
  local ip; ip="$(node_ip)"

  log "etcd"
  start etcd etcd --name gitfs-e2e --data-dir "$E2E_RUN/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
  wait_for etcd 30 curl -fs http://127.0.0.1:2379/health

  log "containerd"
  start containerd containerd --config "$E2E_RUN/containerd/config.toml"
  wait_for containerd 30 ctr -a "$containerd_sock" version
  load_pause_image

  log "kube-apiserver"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --secure-port 6443 \
    --advertise-address "$ip" --service-cluster-ip-range "$service_cidr" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" --kubelet-certificate-authority "$pki/ca.crt" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local --api-audiences https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --allow-privileged=true --enable-admission-plugins NodeRestriction \
    --kubelet-preferred-address-types InternalIP
  wait_for kube-apiserver 90 "$bin/kubectl" --kubeconfig "$E2E_RUN/admin.kubeconfig" get --raw /readyz

  log "kube-controller-manager, kube-scheduler"
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$E2E_RUN/admin.kubeconfig" \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" --controllers '*,-nodeipam,-cloud-node-lifecycle' \
    --leader-elect=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$E2E_RUN/admin.kubeconfig" --leader-elect=false

  log "kube-proxy, kubelet"
  start kube-proxy "$bin/kube-proxy" --kubeconfig "$E2E_RUN/admin.kubeconfig" --hostname-override "$node_name" \
    --cluster-cidr "$pod_cidr" --proxy-mode iptables
  start kubelet "$bin/kubelet" --config "$E2E_RUN/kubelet-config.yaml" --kubeconfig "$E2E_RUN/kubelet.kubeconfig" \
    --root-dir "$kubelet_dir" --hostname-override "$node_name" --node-ip "$ip" --v 2
  wait_for kubelet 120 sh -c "'$bin/kubectl' --kubeconfig '$E2E_RUN/admin.kubeconfig' get node '$node_name' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
  log "node $node_name is Ready (kubeconfig: $E2E_RUN/kubeconfig, kubelet dir: $kubelet_dir)"
}

# A static binary alone in a Docker image, run as its entrypoint (the pause container, sidecars).
binary_image() {
  local binary="$1" image="$2" root
  docker image inspect "$image" >/dev/null 2>&1 && return
  root="$(mktemp -d)"
  cp "$binary" "$root/"
  tar -C "$root" -c "$(basename "$binary")" | docker import --change "ENTRYPOINT [\"/$(basename "$binary")\"]" - "$image" >/dev/null
  rm -rf "$root"
}

# The pod sandbox image: the pause binary built from Kubernetes' source.
load_pause_image() {
  binary_image "$bin/pause" "$pause_image"
  load_image "$pause_image"
}

# Loads a local Docker image into the cluster's containerd (no registry involved).
load_image() {
  docker save "$1" | ctr -a "$containerd_sock" -n k8s.io images import --all-platforms - >/dev/null
}

down() {
  log "tearing down"
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver; do
    [ -f "$E2E_RUN/$name.pid" ] && kill "$(cat "$E2E_RUN/$name.pid")" 2>/dev/null || true
  done
  if [ -S "$containerd_sock" ]; then
    for task in $(ctr -a "$containerd_sock" -n k8s.io tasks ls -q 2>/dev/null); do ctr -a "$containerd_sock" -n k8s.io tasks kill -s SIGKILL "$task" 2>/dev/null || true; done
    sleep 2
  fi
  for name in containerd etcd; do
    [ -f "$E2E_RUN/$name.pid" ] && kill "$(cat "$E2E_RUN/$name.pid")" 2>/dev/null || true
  done
  sleep 2
  # Every mount left under the run directories (pod volumes, FUSE trees, container rootfs, the shared
  # bind of the run directory itself), deepest first, until none is left.
  for _ in 1 2 3 4 5; do
    mounts="$(awk '{print $5}' /proc/self/mountinfo | grep -E "^($E2E_RUN|/run/gitfs-csi-e2e)(/|$)" | sort -r)" || true
    [ -z "$mounts" ] && break
    while read -r m; do umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done <<<"$mounts"
  done
  ip link delete gitfse2e0 2>/dev/null || true
  # kube-proxy's and the CNI plugins' iptables rules: the jumps into their chains, then the chains.
  for table in filter nat mangle; do
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -E '(KUBE-|CNI-)' | sed 's/^-A/-D/' | while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done || true
    iptables -t "$table" -S 2>/dev/null | grep -E '^-N (KUBE-|CNI-)' | awk '{print $2}' | while read -r chain; do iptables -t "$table" -F "$chain" 2>/dev/null; iptables -t "$table" -X "$chain" 2>/dev/null || true; done || true
  done
  rm -rf "$E2E_RUN" /run/gitfs-csi-e2e "/var/lib/cni/networks/gitfs-e2e"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  load-image) load_image "$2" ;;
  binary-image) binary_image "$2" "$3" ;;
  *) echo "usage: $0 up|down|load-image IMAGE|binary-image BINARY IMAGE" >&2; exit 2 ;;
esac
