#!/bin/bash
# Builds the lab's tiny VM from Debian packages: the cloud kernel (vmlinuz and
# its virtio modules, unpacked with dpkg-deb, /boot untouched) and a busybox
# initramfs whose init gets eth0's address, MTU, routes and resolver by DHCP
# (as a cloud image does; seam.ip=/seam.gw=/seam.mtu= on the kernel command
# line set them by hand instead) and serves `seam lab exec` on the second
# serial port. Output: var/vm/{vmlinuz,initrd.img}. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/var/vm}"
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ] && [ "$OUT/initrd.img" -nt "$0" ]; then
  echo "vm image: $OUT is up to date"; exit 0
fi
command -v busybox >/dev/null || { echo "build-vm: busybox (busybox-static) is required" >&2; exit 1; }
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
PKG="$(resolve)"
if [ -z "$PKG" ]; then apt-get update -qq; PKG="$(resolve)"; fi
[ -n "$PKG" ] || { echo "build-vm: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
echo "vm image: kernel package $PKG"
apt-get download "$PKG" >/dev/null
dpkg-deb -x ./*.deb kernel
mkdir -p "$OUT" initramfs/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp kernel/boot/vmlinuz-* "$OUT/vmlinuz.new"
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"
for m in $MODS; do
  f="$(find kernel/lib/modules -name "$m.ko*" | head -1)"
  [ -n "$f" ] || continue  # built in
  case "$f" in
    *.xz) xz -dc "$f" > "initramfs/lib/modules/$m.ko" ;;
    *.zst) zstd -dc "$f" > "initramfs/lib/modules/$m.ko" ;;
    *) cp "$f" "initramfs/lib/modules/$m.ko" ;;
  esac
done
cp "$(command -v busybox)" initramfs/bin/busybox
cat > initramfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
IP=; GW=; MTU=1500; NAME=vm
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    seam.ip=*) IP="${arg#seam.ip=}" ;;
    seam.gw=*) GW="${arg#seam.gw=}" ;;
    seam.mtu=*) MTU="${arg#seam.mtu=}" ;;
    seam.name=*) NAME="${arg#seam.name=}" ;;
  esac
done
hostname "$NAME"
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -n "$IP" ]; then
  ip link set eth0 mtu "$MTU" up
  ip addr add "$IP" dev eth0
  [ -n "$GW" ] && ip route add default via "$GW"
  echo "seam-vm $NAME: eth0 $IP gw $GW mtu $MTU" > /dev/ttyS0
else
  # In the background: `seam lab exec` works while the lease is awaited; /run/lease says when it came.
  ip link set eth0 up
  udhcpc -i eth0 -s /bin/udhcpc.script -t 5 -T 1 -A 1 -O mtu -O staticroutes -O domain -O dns > /dev/ttyS0 2>&1 &
fi
# `seam lab exec`: lines "<id> <base64 command>" in, output then "@@SEAM-DONE <id> <rc>" out.
stty -F /dev/ttyS1 raw -echo
while true; do
  while read -r id cmd; do
    echo "$cmd" | base64 -d > /tmp/cmd 2>/dev/null
    sh /tmp/cmd > /tmp/out 2>&1 < /dev/null
    rc=$?
    cat /tmp/out
    echo "@@SEAM-DONE $id $rc"
  done < /dev/ttyS1 > /dev/ttyS1
done
INIT
# busybox udhcpc's hook: what a cloud image's DHCP client does with a lease.
cat > initramfs/bin/udhcpc.script <<'HOOK'
#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    [ -n "$hostname" ] && hostname "$hostname"
    mkdir -p /run
    echo "ip=$ip/$mask router=$router mtu=$mtu dns=$dns domain=$domain hostname=$hostname uptime=$(cut -d' ' -f1 /proc/uptime)" > /run/lease
    echo "seam-vm: lease $(cat /run/lease)" > /dev/ttyS0
    ;;
esac
exit 0
HOOK
chmod +x initramfs/init initramfs/bin/udhcpc.script
(cd initramfs && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/initrd.img.new"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"; mv "$OUT/initrd.img.new" "$OUT/initrd.img"
echo "vm image: $OUT/vmlinuz $(du -h "$OUT/vmlinuz" | cut -f1), $OUT/initrd.img $(du -h "$OUT/initrd.img" | cut -f1)"
