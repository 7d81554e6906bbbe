#!/usr/bin/env bash
# Builds seam-cni (src/cni/seam-cni.go) into var/bin/seam-cni: a static
# binary, so that a node needs nothing else to run the plugin. The CNI
# versions it accepts come from src/contract/cni-versions.json, the list the
# agent reads too. Skips the build when the binary is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=var/bin/seam-cni
SRC=src/cni/seam-cni.go
VERSIONS=src/contract/cni-versions.json
if [ -x "$OUT" ] && [ "$OUT" -nt "$SRC" ] && [ "$OUT" -nt "$VERSIONS" ] && [ "$OUT" -nt "$0" ]; then exit 0; fi
command -v go >/dev/null || { echo "build-cni: Go is missing (apt-get install golang-go; scripts/setup.sh does)" >&2; exit 1; }
mkdir -p var/bin
versions=$(tr -d ' \n' < "$VERSIONS")
GOCACHE=${GOCACHE:-$PWD/var/go-cache} CGO_ENABLED=0 GO111MODULE=off \
  go build -trimpath -ldflags "-s -w -X 'main.supportedVersions=$versions'" -o "$OUT.tmp" "$SRC"
mv "$OUT.tmp" "$OUT"
rm -rf var/go-cache
echo "build-cni: $OUT ($(du -k "$OUT" | cut -f1) kB)"
