#!/usr/bin/env bash
# Install the host tools Harmony builds, boots and tests with (Debian 12). Run as root.
# qemu-utils is pinned to bookworm's: a newer backport cannot sit beside bookworm's QEMU.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh installs Debian packages: run it as root (or with sudo)" >&2
  exit 1
fi
# Required: building, booting and the tests' reference tools. Missing ones must install.
# qemu-system-x86, qemu-utils: boot images (TCG or KVM), qemu-img (disk format checks)
# ovmf: UEFI firmware for disk boots; ipxe-qemu: the NIC boot ROMs for PXE tests
# e2fsprogs: mkfs.ext4 for `harmony run --state`
# squashfs-tools, erofs-utils, cpio, fdisk, gdisk, dosfstools, mtools, binutils, libxml2-utils:
#   tests read our squashfs, cpio, GPT, FAT, PE and OVF with the reference tools
# busybox-static: the bare-boot baseline in benchmarks
# dnsmasq: the real TFTP server of agent/src/fetch tests
# cloud-init (its `schema` check), cloud-image-utils + genisoimage (NoCloud seeds)
# ignition: real Ignition 2.14, the oracle of agent/tests/differential.rs and agent/benches/apply_1000.rs
# nftables, iproute2, ipvsadm, kmod: firewall probes in network namespaces, IPVS checks
# haproxy: config checks and the baseline of the API proxy benchmark
# docker-registry, skopeo: a real registry on loopback and an independent OCI client
# openssl: test certificates for the join tests
# curl: the host-side probe `harmony run --exec` runs in vm-tests/tests/run_exec.rs
required=(
  qemu-system-x86 qemu-utils/bookworm ovmf ipxe-qemu
  e2fsprogs squashfs-tools erofs-utils cpio zstd xz-utils fdisk gdisk binutils libxml2-utils
  busybox-static ca-certificates
  dnsmasq
  ignition
  cloud-init cloud-image-utils genisoimage dosfstools mtools
  nftables iproute2 ipvsadm kmod haproxy
  docker-registry skopeo openssl curl
)
# Optional: tests that need these print SKIPPED without them. A machine whose mirror is
# unreachable still gets through setup with what it has.
# openscap-scanner + ssg-*: OpenSCAP's CIS scan beside `harmony verify`
# keepalived: `keepalived -t` on the rendered HA config; guestfs-tools/virt-v2v: OVA parse check
optional=(openscap-scanner ssg-nondebian ssg-debderived keepalived virt-v2v)

missing_of() {
  local p name
  for p in "$@"; do
    name=${p%%/*}
    if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed'; then
      echo "$p"
    fi
  done
}
mapfile -t missing < <(missing_of "${required[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
# bookworm's QEMU needs bookworm's qemu-utils (a machine may come with a newer backport).
if [[ " ${missing[*]} " =~ " qemu-system-x86 " ]] && [[ ! " ${missing[*]} " =~ " qemu-utils/bookworm " ]]; then
  missing+=(qemu-utils/bookworm)
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: every required host package is installed"
else
  apt-get update -q
  apt-get install -y -q --no-install-recommends --allow-downgrades "${missing[@]}"
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
  # Bounded: an unreachable mirror costs at most a few minutes, never the run.
  apt_quick=(-o Acquire::Retries=0 -o Acquire::http::Timeout=20)
  # --error-on=any: a mirror that cannot be reached fails here, not in 30 slow downloads.
  if timeout 90 apt-get update -q --error-on=any "${apt_quick[@]}" &&
    timeout 600 apt-get install -y -q --no-install-recommends "${apt_quick[@]}" "${missing_optional[@]}"; then
    echo "setup-host: installed optional ${missing_optional[*]}"
  else
    echo "setup-host: WARNING: optional packages not installed (${missing_optional[*]}); their checks will print SKIPPED" >&2
  fi
fi
# cloud-init is installed for its schema checker only: keep it from configuring this host.
mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
