#!/usr/bin/env bash
# Installs what Seam needs on Debian 12 (as root) and its npm dependencies.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  curl ca-certificates openssl    # the project's own Node.js 22 from the npm registry (scripts/setup-node.sh)
  debootstrap                     # a stock Debian 12 without Node.js for the fresh-machine test
  python3-openstackclient         # the real `openstack` CLI the integration tests drive
  postgresql                      # a real PostgreSQL server for the store tests
  build-essential python3         # node-gyp builds better-sqlite3 from source
  iproute2 nftables               # the agent's dataplane
  qemu-system-x86 busybox-static  # the lab's real VMs: qemu, and the initramfs's userland
  iputils-ping tcpdump iperf3     # lab tests and dataplane benchmarks
  conntrack iputils-arping        # routers: forget a moved floating IP's flows, announce its address
  radvd ndisc6                    # routers: IPv6 router advertisements, and rdisc6 to check them
  podman runc containernetworking-plugins  # a real OCI runtime calling seam-cni (and the reference plugins to compare with)
  dnsmasq-base haproxy            # per network: DHCP and DNS (dnsmasq), metadata at 169.254.169.254 (haproxy)
  dnsperf dhcpcd-base             # the DNS benchmark; a DHCPv6 client for the tests
  tempest neutron-tempest-plugin  # OpenStack's own API test suite, run against Seam (test/tempest.test.ts, scripts/tempest.sh)
  python3-keystone                # a real Keystone (keystone-manage, keystone-wsgi-public) for the --auth keystone tests
  golang-go                       # seam-cni, a static binary a node runs without Node.js (and the Kubernetes build)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js 22 under var/node, the npm dependencies on it, src/ compiled to dist/.
bash scripts/setup-js.sh
# The CNI plugin a runtime executes (var/bin/seam-cni, behind bin/seam-cni).
bash scripts/build-cni.sh
# The lab's VM: a Debian cloud kernel and a busybox initramfs (var/vm).
bash scripts/build-vm.sh
bash scripts/build-rootfs.sh
# A real Kubernetes from Debian's source package (var/kubernetes; built once per source version: ~6 minutes).
bash scripts/build-kubernetes.sh >/dev/null
echo "setup: ready"
