#!/usr/bin/env bash
# Provide real Kubernetes 1.20.2 components (kube-apiserver, kube-proxy,
# kube-scheduler, kube-controller-manager), etcd and kubectl for the e2e and
# datapath suites, using Debian bookworm packages only (no downloads from
# anywhere else).
#
# Debian packages none of these components as binaries, so they are built in one
# go from the `kubernetes` source package and cached outside the checkout.
# Idempotent: once every cached binary exists, only the runtime tools are checked.
# Prints the directory holding the binaries on its last line.
set -euo pipefail

VERSION=1.20.2
CACHE=/var/cache/realip-webhook
BIN_DIR=$CACHE/kubernetes-$VERSION
COMPONENTS=(kube-apiserver kube-proxy kube-scheduler kube-controller-manager)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SRC_LIST=/etc/apt/sources.list.d/realip-webhook-debian-src.sources
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2

export DEBIAN_FRONTEND=noninteractive

log() { echo "install-1.20: $*"; }
die() { echo "install-1.20: ERROR: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (it uses apt-get and writes $CACHE)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian bookworm only"

apt_updated=0
apt_update() {
  ((apt_updated)) && return 0
  log "apt-get update"
  apt-get update -qq || die "apt-get update failed"
  apt_updated=1
}

# Install the given packages that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  apt_update
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# True when some apt source already has a deb-src entry for Debian bookworm.
have_bookworm_deb_src() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    case $f in
      *.sources) # deb822: Types and Suites are fields of the same paragraph
        awk -v RS= '/(^|\n)Types:[^\n]*deb-src/ && /(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/ { found = 1 } END { exit !found }' "$f" && return 0 ;;
      *) grep -Eq '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm[[:space:]].*\bmain\b' "$f" && return 0 ;;
    esac
  done
  return 1
}

# Mirror used by the existing bookworm deb entry (falls back to deb.debian.org).
debian_mirror() {
  local uri
  uri=$(awk -v RS= '/(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/ {
          if (match($0, /(^|\n)URIs:[[:space:]]*[^[:space:]]+/)) { s = substr($0, RSTART, RLENGTH); sub(/.*URIs:[[:space:]]*/, "", s); print s; exit } }' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hE '^[[:space:]]*deb[[:space:]].*[[:space:]]bookworm[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_runtime_tools() {
  # etcd for the API server; iproute2, iptables, conntrack and socat for kube-proxy and the
  # network namespaces of the datapath suite.
  apt_install etcd-server iproute2 iptables conntrack socat
  if command -v kubectl >/dev/null; then
    log "kubectl present: $(command -v kubectl)"
  else
    # kubernetes-client conflicts with other kubectl packages, so only when absent.
    apt_install kubernetes-client
  fi
}

all_cached() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -x $BIN_DIR/$c ]] && "$BIN_DIR/$c" --version >/dev/null 2>&1 || return 1
  done
}

if all_cached; then
  log "cached Kubernetes $VERSION components found in $BIN_DIR"
  ensure_runtime_tools
  echo "$BIN_DIR"
  exit 0
fi

log "building ${COMPONENTS[*]} from Debian's kubernetes source package into $BIN_DIR"
[[ -f $KEYRING ]] || die "$KEYRING missing (package debian-archive-keyring)"
if ! have_bookworm_deb_src; then
  log "adding deb-src entry $SRC_LIST"
  cat >"$SRC_LIST" <<EOF
Types: deb-src
URIs: $(debian_mirror)
Suites: bookworm
Components: main
Signed-By: $KEYRING
EOF
fi
# Also covers a deb-src entry whose index was never fetched.
[[ -n $(apt-cache showsrc kubernetes 2>/dev/null) ]] || apt_update

apt_install golang-go rsync make ca-certificates golang-github-modern-go-reflect2-dev
ensure_runtime_tools

mkdir -p "$CACHE/build"
WORK=$(mktemp -d "$CACHE/build/kubernetes.XXXXXX")
# apt downloads as the unprivileged _apt user when it may write there.
if getent passwd _apt >/dev/null; then chown _apt "$WORK"; fi
trap 'rm -rf "$WORK"' EXIT

log "downloading source package into $WORK"
get_source() { (cd "$WORK" && apt-get source -qq --download-only kubernetes); }
# A stale source index can name files the mirror no longer has: refresh once and retry.
get_source || { ((apt_updated == 0)) && apt_update && get_source; } || die "apt-get source kubernetes failed"
shopt -s nullglob
origs=("$WORK"/kubernetes_*.orig.tar.*)
((${#origs[@]} == 1)) || die "expected one kubernetes_*.orig.tar.* in $WORK, found ${#origs[@]}"
orig=${origs[0]}
mkdir "$WORK/src"
tar -xf "$orig" -C "$WORK/src" --strip-components=1 || die "cannot unpack $orig"
SRC=$WORK/src
[[ -d $SRC/cmd/kube-apiserver && -d $SRC/vendor ]] || die "unexpected layout in $orig"

# reflect2 1.0.1 (vendored) crashes at run time when built with Go 1.19
# ("fatal error: fault" in map iteration); 1.0.2 from Debian fixes it.
[[ -d $REFLECT2 ]] || die "$REFLECT2 missing (package golang-github-modern-go-reflect2-dev)"
rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
mkdir -p "$SRC/vendor/github.com/modern-go/reflect2"
find "$REFLECT2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
  -exec cp {} "$SRC/vendor/github.com/modern-go/reflect2/" \;

# Kubernetes 1.20's build scripts work in GOPATH mode: k8s.io/kubernetes under $GOPATH/src.
mkdir -p "$SRC/.go/src/k8s.io"
ln -s "$SRC" "$SRC/.go/src/k8s.io/kubernetes"

log "building (takes several minutes)"
start=$(date +%s)
(
  cd "$SRC/.go/src/k8s.io/kubernetes"
  # The orig tarball is a `git archive` export: hack/lib/version.sh reads the
  # embedded tag, so the binary reports v1.20.2 without a .git directory.
  GOPATH=$SRC/.go GOCACHE=$WORK/gocache GO111MODULE=off CGO_ENABLED=0 \
    make WHAT="${COMPONENTS[*]/#/cmd/}"
) >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; die "build failed (log tail above)"; }
log "build took $(($(date +%s) - start))s"

mkdir -p "$BIN_DIR"
for c in "${COMPONENTS[@]}"; do
  built=$SRC/_output/bin/$c
  "$built" --version >/dev/null 2>&1 || die "built binary does not run: $built"
  # Copy then rename, so an interrupted install never leaves a half-written binary behind.
  cp "$built" "$BIN_DIR/$c.tmp"
  mv -f "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"
  log "installed $c: $("$BIN_DIR/$c" --version)"
done
echo "$BIN_DIR"
