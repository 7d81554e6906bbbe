#!/usr/bin/env bash
# Installs a built tree (after scripts/setup.sh) as a service: the compiled
# JavaScript, the production dependencies and the project's Node.js under
# PREFIX (default /opt/seam), the systemd units, /etc/seam/seam.yaml and
# seam.env when they are not there yet (never overwritten), and a `seam` system
# user for the controller. DESTDIR puts it all under another root (packaging,
# tests). Then: edit /etc/seam/seam.yaml, `systemctl enable --now seam-server`.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/opt/seam}
DESTDIR=${DESTDIR:-}
root="$DESTDIR$PREFIX"

[ -e dist/.built ] && [ -x var/node/bin/node ] || { echo "install: build first: bash scripts/setup.sh" >&2; exit 1; }
if [ -n "$(find src -newer dist/.built -print -quit)" ]; then echo "install: src/ is newer than dist/: bash scripts/build-js.sh" >&2; exit 1; fi

echo "install: $root"
rm -rf "$root.new"
mkdir -p "$root.new/bin" "$root.new/var/bin" "$root.new/etc"
cp -a dist package.json package-lock.json README.md docs "$root.new/"
cp -a var/node "$root.new/var/node"
cp -a bin/seam "$root.new/bin/seam"
[ -x var/bin/seam-cni ] && cp -a var/bin/seam-cni "$root.new/var/bin/" && cp -a bin/seam-cni "$root.new/bin/seam-cni"
cp -a etc/identity.yaml etc/seam.yaml.example "$root.new/etc/"
# Production dependencies only: no TypeScript, no tsx at run time.
cp -a node_modules "$root.new/node_modules"
(cd "$root.new" && PATH="$PWD/var/node/bin:$PATH" npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$root.old"
[ -e "$root" ] && mv "$root" "$root.old"
mv "$root.new" "$root"
rm -rf "$root.old"

units="$DESTDIR/etc/systemd/system"
mkdir -p "$units"
for u in seam-server.service seam-agent.service; do
  sed "s|/opt/seam|$PREFIX|g" "etc/systemd/$u" > "$units/$u"
done
conf="$DESTDIR/etc/seam"
mkdir -p "$conf"
[ -e "$conf/seam.yaml" ] || cp etc/seam.yaml.example "$conf/seam.yaml"
[ -e "$conf/identity.yaml" ] || install -m 0640 etc/identity.yaml "$conf/identity.yaml"
[ -e "$conf/seam.env" ] || install -m 0600 /dev/null "$conf/seam.env"

if [ -z "$DESTDIR" ]; then
  id seam >/dev/null 2>&1 || useradd --system --home-dir /var/lib/seam --no-create-home --shell /usr/sbin/nologin seam
  chgrp seam "$conf/identity.yaml"
  [ -d /run/systemd/system ] && systemctl daemon-reload
fi
echo "install: done; settings in $conf/seam.yaml, units seam-server and seam-agent"
