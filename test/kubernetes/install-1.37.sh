#!/usr/bin/env bash
# Build Kubernetes 1.37 (kube-apiserver, kube-controller-manager, kube-proxy, kube-scheduler,
# kubectl) and the etcd it requires from the Go modules pinned in this directory's go.mod and
# go.sum, into a cache directory, and print that directory on the last line.
# Go's module and build caches live beside the binaries, so a second run on the same machine
# builds nothing, and a run after a change to go.mod rebuilds only what changed.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"

VERSION=1.37.2
CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
BIN_DIR=$CACHE/kubernetes-$VERSION
COMMANDS=(kube-apiserver kube-controller-manager kube-proxy kube-scheduler kubectl etcd)

log() { echo "install-1.37: $*" >&2; }
die() { echo "install-1.37: ERROR: $*" >&2; exit 1; }

# kube-proxy's nftables mode drives the kernel through the nft command (the data-path suite).
if ! command -v nft >/dev/null; then
  [[ $EUID -eq 0 ]] || die "nft not found: apt-get install nftables (as root)"
  log "installing nftables"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null; } \
    || die "apt-get install nftables failed"
fi

# The key of the cache: what is built and from which pinned modules.
stamp=$(cat go.mod go.sum "$SELF" | sha256sum | cut -c1-16)
if [[ -f $BIN_DIR/.stamp && $(cat "$BIN_DIR/.stamp") == "$stamp" ]]; then
  log "cached in $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "go not found: the machines have Go 1.26 (golang.org/dl is not reachable)"
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-mod=readonly CGO_ENABLED=0

version_pkg=k8s.io/component-base/version
ldflags="-s -w -X $version_pkg.gitVersion=v$VERSION -X $version_pkg.gitMajor=${VERSION%%.*}"
minor=${VERSION#*.}
ldflags+=" -X $version_pkg.gitMinor=${minor%%.*} -X $version_pkg.gitTreeState=clean"

mkdir -p "$CACHE"
out=$(mktemp -d "${BIN_DIR}.XXXXXX")
trap 'rm -rf "$out"' EXIT
log "building ${COMMANDS[*]} (a cold build takes several minutes)"
start=$SECONDS
# One invocation, so the five commands share compiled packages.
go build -trimpath -ldflags "$ldflags" -o "$out/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
# go names a command after its path without the major version suffix: .../server/v3 is "server".
mv "$out/server" "$out/etcd"
log "built in $((SECONDS - start)) s"
for c in "${COMMANDS[@]}"; do
  [[ -x $out/$c ]] || die "no $c in $out"
done
"$out/kube-apiserver" --version | grep -qx "Kubernetes v$VERSION" || die "kube-apiserver reports $("$out/kube-apiserver" --version)"
echo "$stamp" >"$out/.stamp"
rm -rf "$BIN_DIR"
mv "$out" "$BIN_DIR"
trap - EXIT
echo "$BIN_DIR"
