#!/usr/bin/env bash
# Build Kyverno's admission controller (cmd/kyverno) from the Go module pinned in this directory's
# go.mod and go.sum, into a cache directory with the module's CustomResourceDefinitions beside it
# (crds/), and print that directory on the last line.
# The bench (g) runs it out of cluster beside the webhook and the native policies. A cold build
# takes about 11 minutes on 2 cores, so CI does not run it: the bench calls this on first use.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"
source ../support/go-build.sh

VERSION=1.19.1
CACHE=${REALIP_CACHE:-/var/cache/realip-webhook}
BIN_DIR=$CACHE/kyverno-$VERSION

log() { echo "install-kyverno: $*" >&2; }
die() { echo "install-kyverno: ERROR: $*" >&2; exit 1; }

exit_if_cached
go_build_env
begin_staging
log "building kyverno v$VERSION (a cold build takes about 11 minutes on 2 cores)"
start=$SECONDS
go build -trimpath -ldflags "-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=v$VERSION" \
  -o "$STAGING/kyverno" github.com/kyverno/kyverno/cmd/kyverno
log "built in $((SECONDS - start)) s"
# Kyverno refuses to start without its CRDs; they are files of the same module.
cp -r "$(go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)/config/crds" "$STAGING/crds"
chmod -R u+w "$STAGING/crds"
finish_staging kyverno
