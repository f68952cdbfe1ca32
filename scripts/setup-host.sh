#!/usr/bin/env bash
# Install the host tools Harmony builds, boots and tests with (Debian 12). Run as root.
# qemu-utils is pinned to bookworm's: a newer backport cannot sit beside bookworm's QEMU.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh installs Debian packages: run it as root (or with sudo)" >&2
  exit 1
fi
# qemu-system-x86, qemu-utils: boot images (TCG or KVM), qemu-img
# e2fsprogs: mkfs.ext4 for `harmony run --state`
# squashfs-tools, cpio: tests read our squashfs and cpio with the reference tools
# busybox-static: the bare-boot baseline in benchmarks
# dnsmasq: the real TFTP server of agent/src/fetch tests
# cloud-init (its `schema` check), cloud-image-utils + genisoimage + dosfstools + mtools (cloud-localds iso9660/vfat seeds): ignition/src/cloud_config and agent/src/sources/nocloud tests
# ignition: real Ignition 2.14, the oracle of agent/tests/differential.rs and agent/benches/apply_1000.rs
packages=(
  qemu-system-x86 qemu-utils/bookworm
  e2fsprogs squashfs-tools cpio zstd xz-utils
  busybox-static ca-certificates
  dnsmasq
  ignition
  cloud-init cloud-image-utils genisoimage dosfstools mtools
)
# Install only what is missing: a machine that has everything needs no mirror, and
# installed packages are never upgraded behind the user's back.
missing=()
for p in "${packages[@]}"; do
  name=${p%%/*}
  if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# bookworm's QEMU needs bookworm's qemu-utils (a machine may come with a newer backport).
for p in "${missing[@]}"; do
  if [ "$p" = qemu-system-x86 ] && [[ ! " ${missing[*]} " =~ " qemu-utils/bookworm " ]]; then
    missing+=(qemu-utils/bookworm)
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: every host package is installed"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends --allow-downgrades "${missing[@]}"
fi
# cloud-init is installed for its schema checker only: keep it from configuring this host.
mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
