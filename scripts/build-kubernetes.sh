#!/usr/bin/env bash
# A real Kubernetes for the tests and the lab (issue 11), from Debian 12's
# archive only: the `kubernetes` source package (1.20.2, vendor/ complete)
# built with Debian's Go 1.19, beside Debian's etcd 3.4 and containerd 1.6.
# The binaries are cached under var/kubernetes/<key>/bin, keyed by the
# source version, the Go version and the recipe's version, so only a fresh machine
# pays the build (5 to 6 minutes on 2 dedicated cores). Also makes the two
# images pods run without a registry (pause, busybox) under .../images.
# ../shared/kubernetes/ has the recipe this follows and what each fix is for.
#
#   bash scripts/build-kubernetes.sh          # idempotent; prints the binaries' directory last
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CMDS=(kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl)
APT=(apt-get -o DPkg::Lock::Timeout=600 -qq)
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then echo "build-kubernetes: run as root (it installs Debian packages)" >&2; exit 1; fi
# Source packages come from a deb-src stanza mirroring the machine's own archive.
if ! apt-cache showsrc kubernetes >/dev/null 2>&1 || [ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources
  elif [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/debian-src.list
  fi
  "${APT[@]}" update
fi
RUNTIME=(etcd-server containerd runc containernetworking-plugins openssl gcc libc6-dev busybox-static curl)
missing=()
for p in "${RUNTIME[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build-kubernetes: installing ${missing[*]}" >&2
  "${APT[@]}" update
  "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

src_version=$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[ -n "$src_version" ] || { echo "build-kubernetes: no source package 'kubernetes' (is deb-src configured?)" >&2; exit 1; }
go_version=$(apt-cache policy golang-go | awk '/Candidate:/ {print $2}')
# Bump RECIPE when what is built, or how, changes: the cache is keyed by it, the source and Go versions.
RECIPE=1
key=$(printf '%s %s %s' "$src_version" "$go_version" "$RECIPE" | sha256sum | cut -c1-16)
OUT="$ROOT/var/kubernetes/$key"
have_all() { for c in "${CMDS[@]}"; do [ -x "$OUT/bin/$c" ] || return 1; done; }

if ! have_all; then
  echo "build-kubernetes: building Kubernetes $src_version with Go $go_version (cache $OUT; 5 to 6 minutes on 2 cores)" >&2
  "${APT[@]}" install -y --no-install-recommends golang-go dpkg-dev golang-github-modern-go-reflect2-dev >/dev/null
  WORK="$ROOT/var/kubernetes/build"
  rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
  apt-get source -qq --download-only kubernetes >/dev/null
  dpkg-source -x kubernetes_*.dsc >/dev/null
  SRC=$(ls -d "$WORK"/kubernetes-1.20*/ | head -1)
  # GOPATH mode, as upstream 1.20 builds (module mode with Go 1.19 wants go.mod updates).
  export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath"
  mkdir -p "$GOPATH/src/k8s.io" && ln -s "${SRC%/}" "$GOPATH/src/k8s.io/kubernetes"
  cd "$GOPATH/src/k8s.io/kubernetes"
  # The vendored reflect2 1.0.1 crashes under Go >= 1.18 whenever a map is encoded; Debian's 1.0.2 is compatible.
  R2=vendor/github.com/modern-go/reflect2
  rm -f $R2/*.go $R2/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s $R2/
  # The generated OpenAPI definitions are not in the tarball: generate them as Makefile.generated_files does.
  go build -o "$WORK/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
  dirs=$(find -H . \( -path ./_\* -o -path ./.\* -o -path ./vendor \) -prune -o -type f -name '*.go' -print \
    | xargs grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' | sed 's|/[^/]*$||; s|^\./staging/src|vendor|; s|^\./||' \
    | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' | LC_ALL=C sort -u \
    | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  "$WORK/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$WORK/openapi-violations.report" 2>/dev/null
  # The kubelet warns about kernel tunables instead of setting them (kernel.panic_on_oops=1 on a shared machine: no).
  sed -i 's/\tb := KernelTunableModify/\tb := KernelTunableWarn/' pkg/kubelet/cm/container_manager_linux.go
  ld="-s -w"
  for kv in gitVersion=v1.20.2 gitMajor=1 gitMinor=20 gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56 gitTreeState=archive buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ); do
    ld="$ld -X 'k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.${kv%%=*}=${kv#*=}' -X 'k8s.io/kubernetes/vendor/k8s.io/component-base/version.${kv%%=*}=${kv#*=}'"
  done
  mkdir -p "$OUT/bin.partial"
  for c in "${CMDS[@]}"; do
    t0=$(date +%s)
    echo "build-kubernetes: go build $c" >&2
    nice -n 10 go build -trimpath -ldflags "$ld" -o "$OUT/bin.partial/$c" "k8s.io/kubernetes/cmd/$c"
    echo "build-kubernetes: $c built in $(( $(date +%s) - t0 )) s" >&2
  done
  rm -rf "$OUT/bin" && mv "$OUT/bin.partial" "$OUT/bin"
  # the pause container's binary, from Kubernetes' own source
  mkdir -p "$OUT/images"
  gcc -Os -static -o "$OUT/images/pause" "$SRC/build/pause/linux/pause.c"
  cd "$ROOT" && rm -rf "$WORK"   # 2.5 GB of source and Go cache
fi

if [ ! -f "$OUT/images/busybox.tar" ] || [ ! -f "$OUT/images/pause.tar" ]; then
  python3 scripts/kubernetes-images.py "$OUT/images" "$OUT/images/pause"
fi
ln -sfn "$key" "$ROOT/var/kubernetes/current"
echo "$OUT/bin"
