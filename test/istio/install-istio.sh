#!/usr/bin/env bash
# Build Istio's istiod (pilot-discovery) and istioctl from the Go module pinned in this
# directory's go.mod and go.sum, into a cache directory, and print that directory on the last line.
# Go's module and build caches are the ones the Kubernetes build uses, so shared modules are
# downloaded and compiled once, and a second run on the same machine builds nothing.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"
source ../support/go-build.sh

CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
log() { echo "install-istio: $*" >&2; }
die() { echo "install-istio: ERROR: $*" >&2; exit 1; }

go_build_env

# The pseudo-version names the commit; Istio's VERSION file in it names the release line.
MODULE_VERSION=$(go list -m -f '{{.Version}}' istio.io/istio)
BIN_DIR=$CACHE/istio-$MODULE_VERSION

exit_if_cached

go mod download istio.io/istio
release=$(cat "$(go list -m -f '{{.Dir}}' istio.io/istio)/VERSION")
revision=${MODULE_VERSION##*-}
# What Istio's Makefile stamps on a build from its main branch: "<VERSION file>-dev".
version_pkg=istio.io/istio/pkg/version
ldflags="-s -w -X $version_pkg.buildVersion=$release-dev -X $version_pkg.buildGitRevision=$revision"
ldflags+=" -X $version_pkg.buildStatus=Clean -X $version_pkg.buildTag=$MODULE_VERSION"

begin_staging
log "building pilot-discovery and istioctl $release-dev ($MODULE_VERSION; a cold build takes many minutes)"
start=$SECONDS
# One invocation, so the two commands share compiled packages.
go build -trimpath -ldflags "$ldflags" -o "$STAGING/" \
  istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl
log "built in $((SECONDS - start)) s"
"$STAGING/istioctl" version --remote=false --short | grep -qx "client version: $release-dev" \
  || die "istioctl reports $("$STAGING/istioctl" version --remote=false --short)"
finish_staging pilot-discovery istioctl
