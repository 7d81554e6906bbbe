#!/bin/bash
# The lab's container root filesystem: busybox-static and its applets, enough
# for `podman run --rootfs` (no image, no registry). Output: var/rootfs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/var/rootfs}"
if [ -x "$OUT/bin/busybox" ]; then echo "rootfs: $OUT is up to date"; exit 0; fi
command -v busybox >/dev/null || { echo "build-rootfs: busybox (busybox-static) is required" >&2; exit 1; }
mkdir -p "$OUT"/{bin,dev,proc,sys,tmp,etc,run,var}
cp "$(command -v busybox)" "$OUT/bin/busybox"
for applet in $("$OUT/bin/busybox" --list); do [ -e "$OUT/bin/$applet" ] || ln -s busybox "$OUT/bin/$applet"; done
echo "root:x:0:0:root:/:/bin/sh" > "$OUT/etc/passwd"
echo "root:x:0:" > "$OUT/etc/group"
echo "rootfs: $OUT ($(ls "$OUT/bin" | wc -l) applets)"
