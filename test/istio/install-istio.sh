#!/usr/bin/env bash
# Build Istio's istiod (pilot-discovery) and istioctl from the Go module pinned in this
# directory's go.mod and go.sum, into a cache directory, and print that directory on the last line.
# Go's module and build caches are the ones the Kubernetes build uses, so shared modules are
# downloaded and compiled once, and a second run on the same machine builds nothing.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"

CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
log() { echo "install-istio: $*" >&2; }
die() { echo "install-istio: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "go not found: the machines have Go 1.26 (golang.org/dl is not reachable)"
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-mod=readonly CGO_ENABLED=0

# The pseudo-version names the commit; Istio's VERSION file in it names the release line.
MODULE_VERSION=$(go list -m -f '{{.Version}}' istio.io/istio)
BIN_DIR=$CACHE/istio-$MODULE_VERSION

# The key of the cache: what is built and from which pinned modules.
stamp=$(cat go.mod go.sum "$SELF" | sha256sum | cut -c1-16)
if [[ -f $BIN_DIR/.stamp && $(cat "$BIN_DIR/.stamp") == "$stamp" ]]; then
  log "cached in $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

go mod download istio.io/istio
release=$(cat "$(go list -m -f '{{.Dir}}' istio.io/istio)/VERSION")
revision=${MODULE_VERSION##*-}
# What Istio's Makefile stamps on a build from its main branch: "<VERSION file>-dev".
version_pkg=istio.io/istio/pkg/version
ldflags="-s -w -X $version_pkg.buildVersion=$release-dev -X $version_pkg.buildGitRevision=$revision"
ldflags+=" -X $version_pkg.buildStatus=Clean -X $version_pkg.buildTag=$MODULE_VERSION"

mkdir -p "$CACHE"
out=$(mktemp -d "${BIN_DIR}.XXXXXX")
trap 'rm -rf "$out"' EXIT
log "building pilot-discovery and istioctl $release-dev ($MODULE_VERSION; a cold build takes many minutes)"
start=$SECONDS
# One invocation, so the two commands share compiled packages.
go build -trimpath -ldflags "$ldflags" -o "$out/" \
  istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl
log "built in $((SECONDS - start)) s"
for c in pilot-discovery istioctl; do
  [[ -x $out/$c ]] || die "no $c in $out"
done
"$out/istioctl" version --remote=false --short | grep -qx "client version: $release-dev" \
  || die "istioctl reports $("$out/istioctl" version --remote=false --short)"
echo "$stamp" >"$out/.stamp"
rm -rf "$BIN_DIR"
mv "$out" "$BIN_DIR"
trap - EXIT
echo "$BIN_DIR"
