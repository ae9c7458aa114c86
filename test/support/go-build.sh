# Sourced by the scripts that build test infrastructure from a Go wrapper module of ours
# (test/kubernetes/install-1.37.sh, test/istio/install-istio.sh): Go's module and build caches
# under the project's cache directory, a stamp of what a build was made from, and a staging
# directory swapped into place only once every binary is there.
# The caller sets CACHE, BIN_DIR and SELF, defines log and die, and runs from its module directory.

GO_BUILD_HELPER=$(realpath "${BASH_SOURCE[0]}")

go_build_env() {
  command -v go >/dev/null || die "go not found: the machines have Go 1.26 (golang.org/dl is not reachable)"
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-mod=readonly CGO_ENABLED=0
}

# Installs Debian's PACKAGE when COMMAND is missing (root only); the package lists are refreshed
# only when the first try fails.
apt_install_if_missing() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "$command not found: apt-get install $package (as root)"
  log "installing $package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; } \
    || die "apt-get install $package failed"
}

# The -ldflags that make a Kubernetes command report release VERSION (1.37.2), as upstream's build does.
kubernetes_ldflags() {
  local version=$1 minor=${1#*.} pkg=k8s.io/component-base/version
  echo "-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=${version%%.*} -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
}

# Prints BIN_DIR and exits when it holds a build of these go.mod, go.sum and scripts.
exit_if_cached() {
  STAMP=$(cat go.mod go.sum "$SELF" "$GO_BUILD_HELPER" | sha256sum | cut -c1-16)
  if [[ -f $BIN_DIR/.stamp && $(cat "$BIN_DIR/.stamp") == "$STAMP" ]]; then
    log "cached in $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
  fi
}

# A fresh directory beside BIN_DIR to build into; removed if the script fails.
begin_staging() {
  mkdir -p "$CACHE"
  STAGING=$(mktemp -d "${BIN_DIR}.XXXXXX")
  trap 'rm -rf "$STAGING"' EXIT
}

# Checks that each named command was built, swaps the staging directory in, prints BIN_DIR.
finish_staging() {
  local c
  for c in "$@"; do
    [[ -x $STAGING/$c ]] || die "no $c in $STAGING"
  done
  echo "$STAMP" >"$STAGING/.stamp"
  rm -rf "$BIN_DIR"
  mv "$STAGING" "$BIN_DIR"
  trap - EXIT
  echo "$BIN_DIR"
}
