#!/usr/bin/env bash
# Build Kubernetes 1.37 (kube-apiserver, kube-controller-manager, kube-proxy, kube-scheduler,
# kubectl) and the etcd it requires from the Go modules pinned in this directory's go.mod and
# go.sum, into a cache directory, and print that directory on the last line.
# Go's module and build caches live beside the binaries, so a second run on the same machine
# builds nothing, and a run after a change to go.mod rebuilds only what changed.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"
source ../support/go-build.sh

VERSION=1.37.2
CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
BIN_DIR=$CACHE/kubernetes-$VERSION
COMMANDS=(kube-apiserver kube-controller-manager kube-proxy kube-scheduler kubectl etcd)

log() { echo "install-1.37: $*" >&2; }
die() { echo "install-1.37: ERROR: $*" >&2; exit 1; }

# kube-proxy's nftables mode drives the kernel through the nft command (the data-path suite).
apt_install_if_missing nft nftables

exit_if_cached
go_build_env

ldflags=$(kubernetes_ldflags "$VERSION")

begin_staging
log "building ${COMMANDS[*]} (a cold build takes several minutes)"
start=$SECONDS
# One invocation, so the five commands share compiled packages.
go build -trimpath -ldflags "$ldflags" -o "$STAGING/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
# go names a command after its path without the major version suffix: .../server/v3 is "server".
mv "$STAGING/server" "$STAGING/etcd"
log "built in $((SECONDS - start)) s"
"$STAGING/kube-apiserver" --version | grep -qx "Kubernetes v$VERSION" || die "kube-apiserver reports $("$STAGING/kube-apiserver" --version)"
finish_staging "${COMMANDS[@]}"
