#!/usr/bin/env bash
# Builds a stand-in for the official node:<version>-bookworm-slim image from the registries this
# project can reach (Debian's archive and npm's), for machines without Docker Hub:
#   Debian bookworm (debootstrap --variant=minbase, with docs, locales and apt lists removed as
#   in debian:bookworm-slim), the official Node binary (the npm package `node`, the one
#   .ci/install-node.sh installs) under /usr/local, the npm release that Node version ships, and
#   the user `node` with uid and gid 1000.
# Usage: base.sh VERSION. Cached by version in containers storage (CONTAINERS_STORAGE_CONF); prints
# the image name on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=${1:?usage: base.sh NODE_VERSION}
IMAGE=localhost/node-standin:$VERSION-bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "base: $*" >&2; }
die() { echo "base: ERROR: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap and buildah mount)"
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install buildah debootstrap"
done

# One build at a time; a second caller waits, then finds the image cached.
mkdir -p /var/cache/realip-webhook
exec 9>/var/cache/realip-webhook/node-standin.lock
flock 9

if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE is cached"
  echo "$IMAGE"
  exit 0
fi

node_bin=$(NODE_VERSION=$VERSION bash .ci/install-node.sh)
# The platform package holds the release tarball's bin/, include/ and share/ and its CHANGELOG.
node_pkg=$(dirname "$(find "$node_bin/.." -maxdepth 4 -path '*/node-linux-*/package.json' | head -n 1)")
[[ -x $node_pkg/bin/node ]] || die "no node-linux-* package under $node_bin/.."
# The newest "upgrade npm to X" in the release's changelog is the npm this release bundles.
npm_version=$(grep -m 1 -oP 'deps\*\*: upgrade npm to \K[0-9]+\.[0-9]+\.[0-9]+' "$node_pkg/CHANGELOG.md") \
  || die "no npm upgrade found in $node_pkg/CHANGELOG.md"

ctr=''
mnt=''
cleanup() {
  # debootstrap mounts /proc and /sys in the target; a failure can leave them behind.
  if [[ -n $mnt ]]; then
    findmnt --list --noheadings --output TARGET | grep -F "$mnt/" | sort -r | xargs -r umount -l || true
  fi
  [[ -z $ctr ]] || buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
log "debootstrap --variant=minbase bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$mnt" "$MIRROR" >&2

log "Node $VERSION (npm package node-linux-*) and npm $npm_version into /usr/local"
mkdir -p "$mnt/usr/local/bin"
cp "$node_pkg/bin/node" "$mnt/usr/local/bin/node"
cp -r "$node_pkg/include" "$node_pkg/share" "$mnt/usr/local/"
# As the official image does: OpenSSL headers for other platforms go (about 60 MB).
case $(uname -m) in
  x86_64) openssl_arch=linux-x86_64 ;;
  aarch64) openssl_arch=linux-aarch64 ;;
  *) die "no OpenSSL header directory known for $(uname -m)" ;;
esac
find "$mnt/usr/local/include/node/openssl/archs" -mindepth 1 -maxdepth 1 ! -name "$openssl_arch" -exec rm -rf {} +
cp "$node_pkg"/{CHANGELOG.md,LICENSE,README.md} "$mnt/usr/local/"
PATH="$node_bin:$PATH" npm install --global --prefix "$mnt/usr/local" --no-audit --no-fund --loglevel=error "npm@$npm_version" >&2

chroot "$mnt" groupadd --gid 1000 node
chroot "$mnt" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# What debian:bookworm-slim leaves out: documentation but the copyright files, manuals,
# translations, the package lists and apt's caches; and device nodes (a runtime provides /dev).
find "$mnt/usr/share/doc" -type f ! -name copyright -delete
find "$mnt/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$mnt"/usr/share/{man,info,locale}/* "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/* "$mnt"/dev/*
chroot "$mnt" /usr/local/bin/node --version >/dev/null || die "node does not run in the new root"

buildah unmount "$ctr" >/dev/null
mnt=''
buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$VERSION" \
  --cmd node \
  --label org.opencontainers.image.description="stand-in for node:$VERSION-bookworm-slim (Debian bookworm minbase, official Node binary, npm $npm_version, uid 1000)" \
  "$ctr"
buildah commit --rm "$ctr" "$IMAGE" >/dev/null
ctr=''
log "built $IMAGE"
echo "$IMAGE"
