#!/usr/bin/env bash
# Install the host tools Harmony builds, boots and tests with (Debian 12). Run as root.
# qemu-utils is pinned to bookworm's: a newer backport cannot sit beside bookworm's QEMU.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host.sh installs Debian packages: run it as root (or with sudo)" >&2
  exit 1
fi
# Required: building, booting and every tool a test runs. Missing ones must install: a test
# whose tool is missing fails under HARMONY_TEST_STRICT=1 (set by .ci/run).
# qemu-system-x86, qemu-utils: boot images (TCG or KVM), qemu-img (disk format checks)
# ovmf: UEFI firmware for disk boots; ipxe-qemu: the NIC boot ROMs for PXE tests
# e2fsprogs: mkfs.ext4 for `harmony run --state`; debugfs reads state disks in vm-tests/tests/power_cut.rs
# squashfs-tools, erofs-utils, cpio, fdisk, gdisk, dosfstools, mtools, binutils, libxml2-utils:
#   tests read our squashfs, cpio, GPT, FAT, PE and OVF with the reference tools
# busybox-static: the bare-boot baseline in benchmarks, icmp probes in agent/tests/firewall_netns.rs,
#   the component image agent/tests/component_isolation.rs runs
# dnsmasq-base: the dnsmasq binary only (agent/src/fetch tests start their own TFTP and DNS
#   servers on loopback addresses of their own), not the dnsmasq host service
# squashfs-tools-ng: rdsquashfs lists our squashfs's xattrs (emit::squashfs, selinux tests)
# cloud-init (its `schema` check), cloud-image-utils + genisoimage (NoCloud seeds)
# ignition: real Ignition 2.14, the oracle of agent/tests/differential.rs and agent/benches/apply_1000.rs
# nftables, iproute2, ipvsadm, kmod, util-linux (unshare, setpriv): firewall probes in network
#   namespaces, IPVS checks, builder/src/steps/rootless_tests.rs run as nobody
# haproxy: config checks and the baseline of the API proxy benchmark
# docker-registry, skopeo: a real registry on loopback and an independent OCI client
#   (python3: the bcrypt htpasswd of builder/tests/registry_*.rs; verity's oracle)
# python3-venv: the venvs of the PyPI tools below (pip_tool)
# openssl: test certificates for the join tests and agent/tests/config_tls_and_proxy.rs
# curl: agent/tests/join_through_api_proxy.rs, and the host-side probe `harmony run --exec`
#   runs in vm-tests/tests/run_exec.rs
# dbus-daemon, python3-dbus, python3-gi: a real bus and a stand-in systemd for agent/tests/join_dbus.rs
# systemd: systemd-analyze verify of the API proxy unit (agent/src/ha/proxy_service.rs)
# openssh-server: sshd -t of the hardening drop-in (builder/src/harden/ssh.rs)
# openssh-client: ssh and ssh-keygen log in to a booted debian-node with the config's key
#   (vm-tests/tests/debian_node.rs, ssh_logs_in_with_the_configured_key_and_refuses_another)
# openscap-scanner, openscap-utils (oscap-chroot), ssg-*: OpenSCAP's CIS scan beside
#   `harmony verify` (vm-tests/tests/flavours.rs)
# keepalived: `keepalived -t` on the rendered HA config (agent/src/ha/keepalived.rs,
# ignition/src/keepalived.rs, builder/src/components/haproxy.rs)
# virt-v2v: parses our OVA (builder/src/emit/ova.rs; libguestfs forced to TCG there)
# gcc, libc6-dev, linux-libc-dev: init/src/device_mapper.rs compiles a C program against
#   <linux/dm-ioctl.h>
# libsystemd-dev: agent/tests/sd_bus_handshake.rs compiles systemd's own D-Bus server
#   (sd-bus) to check the agent's handshake with PID 1
# libsqlite3-dev: the builder links sqlite to read rpm's rpmdb.sqlite (builder/src/sbom/rpmdb.rs)
# rpm: rpmbuild and rpm make the real rpm database the SBOM reader is checked against
#   (builder/src/sbom/rpmdb.rs)
# strace: agent/tests/durability_syncs.rs traces the fsyncs and syncfs calls of apply
# mmdebstrap (+ uidmap for unprivileged builds): the debian-node base, installed with
#   maintainer scripts (`harmony base debian --mode install`; vm-tests/tests/debian_node.rs)
# sbsigntool: `sbverify --cert` checks the UKI's Authenticode signature
#   (builder/src/emit/pe_authenticode.rs tests)
# umoci: the reference of the OCI unpack benchmark (builder/benches/oci_unpack.rs, scripts/bench.sh)
# bsdutils: `script` gives `harmony run --interactive` a terminal in vm-tests/tests/run_interactive.rs
required=(
  qemu-system-x86 qemu-utils/bookworm ovmf ipxe-qemu
  e2fsprogs squashfs-tools squashfs-tools-ng erofs-utils cpio zstd xz-utils fdisk gdisk binutils libxml2-utils
  busybox-static ca-certificates
  dnsmasq-base
  ignition
  cloud-init cloud-image-utils genisoimage dosfstools mtools
  nftables iproute2 ipvsadm kmod util-linux haproxy
  docker-registry skopeo python3 python3-venv openssl curl
  dbus-daemon python3-dbus python3-gi systemd openssh-server openssh-client
  openscap-scanner openscap-utils ssg-base ssg-nondebian ssg-debderived ssg-debian
  keepalived virt-v2v
  gcc libc6-dev linux-libc-dev libsystemd-dev
  libsqlite3-dev rpm
  strace
  mmdebstrap uidmap
  sbsigntool
  umoci bsdutils
)
# Packages above that bring a host service: the tests start their own (on loopback, in
# namespaces, with their own config), so the service must not run on this host.
# package:unit
services=(docker-registry:docker-registry openssh-server:ssh keepalived:keepalived haproxy:haproxy)

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
# bookworm's QEMU needs bookworm's qemu-utils (a machine may come with a newer backport).
if [[ " ${missing[*]} " =~ " qemu-system-x86 " ]] && [[ ! " ${missing[*]} " =~ " qemu-utils/bookworm " ]]; then
  missing+=(qemu-utils/bookworm)
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: every required host package is installed"
else
  # No service starts during the install (invoke-rc.d and deb-systemd-invoke ask
  # policy-rc.d); a policy the host already has is left as it is.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/setup-host.sh: no service starts while it installs\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends --allow-downgrades "${missing[@]}"
  # Installing enabled these services for the next boot: disable the ones this run brought.
  for entry in "${services[@]}"; do
    package=${entry%%:*}
    unit=${entry#*:}
    if [[ " ${missing[*]} " =~ " $package " ]] && command -v systemctl >/dev/null; then
      systemctl disable --quiet "$unit" 2>/dev/null || true
      systemctl stop "$unit" 2>/dev/null || true
      echo "setup-host: $unit (from $package) installed but stopped and disabled"
    fi
  done
fi
# docker-registry: earlier setups left it as a running service; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
  systemctl disable --quiet docker-registry 2>/dev/null || true
  systemctl stop docker-registry 2>/dev/null || true
  echo "setup-host: docker-registry service stopped and disabled (the tests start their own)"
fi
# cloud-init is installed for its schema checker only: keep it from configuring this host.
mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
# Python tools Debian does not package, from PyPI: each in its own venv under /opt/harmony
# (Debian's python3 is externally managed, PEP 668: a venv keeps pip away from the system's
# packages, unlike --break-system-packages), its commands linked into /usr/local/bin.
# Needs python3-venv. Usage: pip_tool PACKAGE==VERSION COMMAND...
pip_tool() {
  local spec=$1 venv=/opt/harmony/${1%%==*} command
  shift
  if ! "$venv/bin/pip" show -q "${spec%%==*}" 2>/dev/null ||
     [ "$("$venv/bin/pip" show "${spec%%==*}" | sed -n 's/^Version: //p')" != "${spec#*==}" ]; then
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$spec"
  fi
  for command in "$@"; do
    ln -sf "$venv/bin/$command" "/usr/local/bin/$command"
  done
  echo "setup-host: $spec in $venv ($*)"
}
# spdx-tools: pyspdxtools validates every build's NAME.spdx.json (builder/src/sbom tests,
#   vm-tests/tests/reproducible.rs)
pip_tool spdx-tools==0.8.5 pyspdxtools
# virt-firmware: virt-fw-vars enrolls the image's certificate in a fresh OVMF variable store
#   (`harmony run --secure-boot`; builder/src/run/secure_boot.rs, vm-tests/tests/secure_boot.rs)
pip_tool virt-firmware==26.10 virt-fw-vars
