#!/usr/bin/env bash
# The JavaScript side of setup: Node.js 22 and npm under var/node (whatever the
# system has, if anything), `npm ci` on it (native addons built against its
# headers), and src/ compiled to dist/ (what bin/seam runs). Needs curl or wget,
# openssl, and python3, make and g++ for better-sqlite3; scripts/setup.sh
# installs them. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-node.sh
export PATH="$PWD/var/node/bin:$PATH" npm_config_nodedir="$PWD/var/node" npm_config_update_notifier=false
[ -r /etc/ssl/certs/ca-certificates.crt ] && export npm_config_cafile=/etc/ssl/certs/ca-certificates.crt

# Again when the lock file or the Node.js changed (a native addon is built for one Node.js ABI).
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "$(cat node_modules/.seam-node 2>/dev/null)" != "$(node --version)" ]; then
  echo "setup: npm ci (builds better-sqlite3 from source: about a minute on 2 cores)"
  npm ci --no-audit --no-fund --loglevel=error
  node --version > node_modules/.seam-node
fi
bash scripts/build-js.sh
