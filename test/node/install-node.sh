#!/usr/bin/env bash
# Build a Kubernetes 1.37 node for test:node from the Go modules pinned in this directory's go.mod
# and go.sum: the kubelet, containerd with its runc shim and ctr, the CNI plugins, and a pause
# image, into a cache directory, and print that directory on the last line. runc is Debian's.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"
source ../support/go-build.sh

VERSION=1.37.2
CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
BIN_DIR=$CACHE/node-$VERSION
COMMANDS=(kubelet containerd containerd-shim-runc-v2 ctr bridge host-local loopback pause)

log() { echo "install-node: $*" >&2; }
die() { echo "install-node: ERROR: $*" >&2; exit 1; }

apt_install_if_missing runc runc

exit_if_cached
go_build_env

begin_staging
start=$SECONDS
log "building ${COMMANDS[*]} (a cold build takes several minutes)"
# The kubelet reports its release, as the control plane of install-1.37.sh does.
ldflags=$(kubernetes_ldflags "$VERSION")
# One invocation, so the commands share compiled packages.
go build -trimpath -ldflags "$ldflags" -o "$STAGING/" \
  k8s.io/kubernetes/cmd/kubelet \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr \
  github.com/containernetworking/plugins/plugins/main/bridge \
  github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/main/loopback \
  ./pause
"$STAGING/kubelet" --version | grep -qx "Kubernetes v$VERSION" || die "kubelet reports $("$STAGING/kubelet" --version)"

# The pause image as an OCI archive for `ctr images import`: one layer holding /pause.
oci=$(mktemp -d)
trap 'rm -rf "$STAGING" "$oci"' EXIT
blob() { # file -> its digest, moved into the archive's blobs
  local d
  d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$oci/blobs/sha256/$d"
  echo "$d"
}
mkdir -p "$oci/blobs/sha256" "$oci/rootfs"
cp "$STAGING/pause" "$oci/rootfs/pause"
tar -C "$oci/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$oci/layer.tar" pause
layer=$(blob "$oci/layer.tar")
layer_size=$(stat -c %s "$oci/blobs/sha256/$layer")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$layer" >"$oci/config.json"
config_size=$(stat -c %s "$oci/config.json")
config=$(blob "$oci/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" >"$oci/manifest.json"
manifest_size=$(stat -c %s "$oci/manifest.json")
manifest=$(blob "$oci/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"localhost/realip-pause:1","org.opencontainers.image.ref.name":"1"}}]}' \
  "$manifest" "$manifest_size" >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
tar -C "$oci" --owner=0 --group=0 --numeric-owner -cf "$STAGING/pause.tar" oci-layout index.json blobs
rm -rf "$oci"
log "built in $((SECONDS - start)) s"
finish_staging "${COMMANDS[@]}"
