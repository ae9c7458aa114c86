#!/usr/bin/env bash
# Install the Node.js release the project is tested on into a cache directory and print its
# bin directory, for `export PATH="$(bash .ci/install-node.sh):$PATH"`.
# The binary is the official one, shipped inside the npm registry package `node`; a machine
# with only an older system Node (Debian's, or one past end of life) gets the right one this way.
set -euo pipefail

VERSION=${NODE_VERSION:-24.21.0}
# /var/cache for root (CI, and kept on the machine between runs); a user's own cache otherwise.
default_cache=/var/cache/realip-webhook
[[ $EUID -eq 0 ]] || default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/realip-webhook
PREFIX=${NODE_CACHE:-$default_cache}/node-$VERSION
BIN=$PREFIX/node_modules/.bin

if ! "$BIN/node" --version >/dev/null 2>&1; then
  mkdir -p "$PREFIX"
  # --prefix keeps it out of the project's node_modules; the package's preinstall fetches
  # the platform's binary package from the same registry.
  npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "node@$VERSION" >&2
fi
actual=$("$BIN/node" --version)
[[ $actual == "v$VERSION" ]] || { echo "install-node: expected v$VERSION, got $actual" >&2; exit 1; }
echo "$BIN"
