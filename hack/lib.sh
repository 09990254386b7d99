# Shared settings for the hack/ scripts. Source it; do not run it.
# Versions fit one Kubernetes minor (1.36): etcd 3.6 is what kubeadm pairs with it,
# KWOK v0.8.0 and LeaderWorkerSet v0.9.0 are built against 1.36 client libraries.
# (LWS v0.10.0 exists, but the Go module proxy refuses its zip: "403 This module
# version is not available"; v0.9.0 is served and uses client-go v0.36.2.)
K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.14}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
LWS_VERSION=${LWS_VERSION:-v0.9.0}

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HACK_DIR/.." && pwd)
# Built binaries live outside the work tree, keyed by version, so clones share them.
MODELPLANE_CACHE=${MODELPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelplane}
# Runtime state (PKI, data, logs, PID files) of the local cluster.
MODELPLANE_RUN=${MODELPLANE_RUN:-$REPO_ROOT/.cluster}

ETCD_PORT=${ETCD_PORT:-12379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-12380}
APISERVER_PORT=${APISERVER_PORT:-16443}
KCM_PORT=${KCM_PORT:-20257}
SCHEDULER_PORT=${SCHEDULER_PORT:-20259}
KWOK_PORT=${KWOK_PORT:-20247}
LWS_WEBHOOK_PORT=${LWS_WEBHOOK_PORT:-19443}
LWS_METRICS_PORT=${LWS_METRICS_PORT:-18443}
LWS_HEALTH_PORT=${LWS_HEALTH_PORT:-18081}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

bin_dir() { echo "$MODELPLANE_CACHE/bin/$1-$2"; }
K8S_BIN=$(bin_dir kubernetes "$K8S_VERSION")
ETCD_BIN=$(bin_dir etcd "$ETCD_VERSION")
KWOK_BIN=$(bin_dir kwok "$KWOK_VERSION")
HELM_BIN=$(bin_dir helm "$HELM_VERSION")
LWS_BIN=$(bin_dir lws "$LWS_VERSION")

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

k8s_minor() { local v=${1#v}; v=${v#*.}; echo "${v%%.*}"; }

# version_ok BINARY: does a binary found elsewhere match the pinned minor?
version_ok() {
  local path=$1 name out want
  name=$(basename "$path")
  case $name in
    kube-apiserver|kube-controller-manager|kube-scheduler)
      out=$("$path" --version 2>/dev/null) || return 1
      want="v1.$(k8s_minor "$K8S_VERSION")."; [[ $out == *"$want"* ]] ;;
    kubectl)
      out=$("$path" version --client 2>/dev/null) || return 1
      want="v1.$(k8s_minor "$K8S_VERSION")."; [[ $out == *"$want"* ]] ;;
    etcd)
      out=$("$path" --version 2>/dev/null) || return 1
      want=${ETCD_VERSION#v}; [[ $out == *"etcd Version: ${want%.*}."* ]] ;;
    *) return 1 ;;
  esac
}

# find_bin NAME: path of a usable binary, preferring ones the user already has
# (MODELPLANE_BIN_DIR, KUBEBUILDER_ASSETS, PATH at the pinned minor), else our cache.
find_bin() {
  local name=$1 dir cand
  for dir in "${MODELPLANE_BIN_DIR:-}" "${KUBEBUILDER_ASSETS:-}"; do
    [ -n "$dir" ] && [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
  done
  case $name in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) dir=$K8S_BIN ;;
    etcd) dir=$ETCD_BIN ;;
    kwok) dir=$KWOK_BIN ;;
    helm) dir=$HELM_BIN ;;
    lws-controller) dir=$LWS_BIN ;;
    *) return 1 ;;
  esac
  [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
  cand=$(command -v "$name" 2>/dev/null) || return 1
  version_ok "$cand" && { echo "$cand"; return 0; }
  return 1
}
