#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd that the real-cluster tests (test/kubernetes-real/) run on loopback, from
# the Go modules pinned in test/kube-apiserver/go.mod and test/etcd/go.mod (and test/kubectl/go.mod when the
# machine has no kubectl), into a cache directory keyed by their
# versions. A fresh machine builds them once (about 9 minutes on 2 cores for kube-apiserver, 1 for etcd); later
# runs find them and return at once. Prints the directory. Nothing built here is shipped.
#
#   scripts/build-kube-binaries.sh            # build what is missing, print the directory
#   TB_KUBE_BIN_DIR=/some/dir npm test        # use binaries from elsewhere instead
set -euo pipefail
cd "$(dirname "$0")/.."

module_version() { # go.mod, module path -> the version it requires
  sed -n "s#^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}$2 \(v[^ ]*\).*#\2#p" "$1" | head -n 1
}
kubernetes_version=$(module_version test/kube-apiserver/go.mod k8s.io/kubernetes)
etcd_version=$(module_version test/etcd/go.mod go.etcd.io/etcd/server/v3)
[ -n "$kubernetes_version" ] && [ -n "$etcd_version" ] || { echo "cannot read the pinned versions from test/*/go.mod" >&2; exit 1; }
dir="${TB_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workload-token-broker}/kubernetes-${kubernetes_version}-etcd-${etcd_version}"
mkdir -p "$dir"

command -v go >/dev/null 2>&1 || { echo "go is not on PATH (Go 1.25 or later builds the binaries)" >&2; exit 1; }
build() { # module dir, binary name
  if [ -x "$dir/$2" ]; then return 0; fi
  echo "building $2 from $1 into $dir (once per version)" >&2
  # Built to a temporary name and renamed: a build killed half-way never leaves a binary that looks complete.
  (cd "$1" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$dir/.$2.partial" .)
  mv "$dir/.$2.partial" "$dir/$2"
}
build test/etcd etcd
build test/kube-apiserver kube-apiserver
# kubectl applies and dry-runs manifests in the tests; a machine that has one uses it.
command -v kubectl >/dev/null 2>&1 || build test/kubectl kubectl
echo "$dir"
