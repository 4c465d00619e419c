#!/usr/bin/env bash
# Installs the Node.js that the container image runs, for .ci/run's second test run. The version is the one the
# Dockerfile's FROM lines pin (the only place it is written down); the binary is the official build shipped inside
# the npm registry's node-linux-<arch> package tarball (no install script, nothing fetched from anywhere else),
# installed once per version into a cache directory. Refuses a version whose binary does not call itself an LTS
# release. Prints the directory that holds its `node`.
#
#   scripts/lts-node.sh                       # install if missing, print the bin directory
#   scripts/lts-node.sh --version             # print the pinned version only (installs nothing)
#   PATH="$(scripts/lts-node.sh):$PATH" npm test
set -euo pipefail
cd "$(dirname "$0")/.."

versions=$(sed -nE 's/^FROM[[:space:]]+node:([0-9]+\.[0-9]+\.[0-9]+)-[a-z]+-slim([[:space:]].*)?$/\1/p' Dockerfile | sort -u)
froms=$(grep -cE '^FROM[[:space:]]' Dockerfile || true)
pinned=$(sed -nE 's/^FROM[[:space:]]+node:([0-9]+\.[0-9]+\.[0-9]+)-[a-z]+-slim([[:space:]].*)?$/\1/p' Dockerfile | wc -l)
if [ -z "$versions" ] || [ "$(printf '%s\n' "$versions" | wc -l)" -ne 1 ] || [ "$pinned" -ne "$froms" ]; then
  echo "lts-node: every FROM line of the Dockerfile must be node:X.Y.Z-<debian>-slim with the same X.Y.Z" >&2
  exit 1
fi
version=$versions
if [ "${1:-}" = --version ]; then
  echo "$version"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: scripts/lts-node.sh [--version]" >&2; exit 2; }

[ "$(uname -s)" = Linux ] || { echo "lts-node: only Linux is supported (node-linux-<arch> packages)" >&2; exit 1; }
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "lts-node: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
package="node-linux-$arch"
cache="${TB_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workload-token-broker}"
dir="$cache/node-v$version-linux-$arch"

# Checks a node binary: the pinned version, and an LTS release (process.release.lts names its line, e.g. Krypton).
check() { # path to node -> exit status; prints the reason when it fails
  local reported lts
  reported=$("$1" --version 2>/dev/null) || { echo "$1 does not run" >&2; return 1; }
  [ "$reported" = "v$version" ] || { echo "$1 is $reported, not v$version" >&2; return 1; }
  lts=$("$1" -p 'process.release.lts ?? ""')
  [ -n "$lts" ] || { echo "lts-node: Node.js $version is not an LTS release: pin an LTS version in the Dockerfile" >&2; return 1; }
}

if [ -x "$dir/bin/node" ] && check "$dir/bin/node" 2>/dev/null; then
  echo "$dir/bin"
  exit 0
fi

mkdir -p "$cache"
rm -rf "$dir"
tmp=$(mktemp -d "$cache/.node-v$version.partial.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "lts-node: installing $package@$version from the npm registry into $dir (once per version)" >&2
# From inside the empty directory, so the project's package.json and lock file are never read or written.
(cd "$tmp" && npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
  --loglevel=error "$package@$version" >&2)
check "$tmp/node_modules/$package/bin/node"
# Renamed into place whole: an install killed half-way never leaves a directory that looks complete.
mv "$tmp/node_modules/$package" "$dir"
echo "$dir/bin"
