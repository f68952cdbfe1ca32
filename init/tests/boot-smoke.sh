#!/bin/bash
# Boots harmony-init for real under QEMU (TCG) with a Debian cloud kernel:
#   1. state on an ext4 disk labelled harmony-state, booted twice (the second
#      boot must see the first boot's write);
#   2. no harmony.state= (tmpfs writable layer);
#   3. an erofs root instead of squashfs (tmpfs state);
#   4. harmony.state= naming a label no disk has, with a module list naming a
#      missing module: the boot must go on past the module, then print
#      HARMONY-INIT-ERROR naming the label and the failed module, and power off.
# Needs root only for nothing; needs qemu-system-x86_64, busybox (static),
# mksquashfs, mkfs.erofs, mkfs.ext4, debugfs, cpio, zstd, modinfo.
#
# Usage: init/tests/boot-smoke.sh KERNEL_TREE   (an unpacked linux-image-*-cloud-amd64
#        .deb with boot/vmlinuz-* and lib/modules/KVER: `apt-get download` + `dpkg -x`)
set -euo pipefail

KTREE=${1:?usage: $0 KERNEL_TREE (an unpacked linux-image-*-cloud-amd64 .deb)}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
KVER=$(ls "$KTREE/lib/modules" | head -n1)
KERNEL=$(ls "$KTREE"/boot/vmlinuz-* | head -n1)
MODDIR=$KTREE/lib/modules/$KVER
# What this boot needs: the loop-mounted root, the overlay, a virtio disk.
WANTED=(loop squashfs erofs overlay virtio_pci virtio_blk)

WORK=$(mktemp -d /tmp/harmony-init-smoke.XXXXXX)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT
log() { echo "== $*" >&2; }

log "building static harmony-init"
(cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --release --target x86_64-unknown-linux-gnu -p harmony-init)
INIT_BIN=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/harmony-init

# Dependency order from each module's .modinfo depends= (the .deb has no modules.dep).
declare -A DONE=()
ORDER=()
module_file() { find "$MODDIR" -name "$1.ko" -print -quit; }
add_module() {
    local name=$1 file dep
    [[ -n ${DONE[$name]:-} ]] && return
    DONE[$name]=1
    file=$(module_file "$name")
    [[ -n $file ]] || { echo "module $name not found under $MODDIR" >&2; exit 1; }
    for dep in $(modinfo -F depends "$file" | tr ',' ' '); do add_module "$dep"; done
    ORDER+=("$file")
}
for m in "${WANTED[@]}"; do add_module "$m"; done

log "initramfs: /init + ${#ORDER[@]} modules"
IRD=$WORK/initramfs
mkdir -p "$IRD/etc/harmony-init"
install -m 0755 "$INIT_BIN" "$IRD/init"
for file in "${ORDER[@]}"; do
    rel=usr/lib/modules/$KVER/${file#"$MODDIR"/}
    mkdir -p "$IRD/$(dirname "$rel")"
    cp "$file" "$IRD/$rel"
    echo "/$rel" >>"$IRD/etc/harmony-init/modules"
done
cat "$IRD/etc/harmony-init/modules" >&2
initramfs_img() {
    (cd "$IRD" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | zstd -q -19) >"$1"
    # The kernel takes an archive after a compressed one only at a 4-byte aligned
    # offset ("invalid magic at start of compressed archive" otherwise): zero-pad.
    truncate -s %4 "$1"
}
initramfs_img "$WORK/initramfs.img"
echo "/usr/lib/modules/$KVER/kernel/missing/optional.ko" >>"$IRD/etc/harmony-init/modules"
initramfs_img "$WORK/initramfs-missing-module.img"

log "root image: busybox whose /sbin/init prints markers and powers off"
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,etc}   # no /run: the overlay's upper must get it
cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
cat >"$ROOT/sbin/init" <<'INIT'
#!/bin/busybox sh
export PATH=/bin
busybox echo "HARMONY-SMOKE: root reached, pid $$, argv0 $0, uptime $(busybox cut -d' ' -f1 /proc/uptime) s"
busybox echo "HARMONY-SMOKE: / is $(busybox awk '$2=="/"{print $3}' /proc/mounts), state at $(busybox awk '$2=="/run/harmony/state"{print $1" "$3}' /proc/mounts)"
busybox echo "boot at $(busybox cut -d' ' -f1 /proc/uptime)" >>/smoke-boots
busybox echo "HARMONY-SMOKE: boots recorded: $(busybox wc -l </smoke-boots)"
busybox sync
busybox poweroff -f
INIT
chmod 0755 "$ROOT/sbin/init"
# rootfs_cpio FORMAT IMAGE-NAME: the second initrd, holding /harmony/IMAGE-NAME.
rootfs_cpio() {
    local dir=$WORK/rootfs-$1
    mkdir -p "$dir/harmony"
    case $1 in
        squashfs) mksquashfs "$ROOT" "$dir/harmony/$2" -noappend -comp zstd -all-root -quiet -no-progress >/dev/null ;;
        erofs) mkfs.erofs --quiet --all-root -T0 "$dir/harmony/$2" "$ROOT" >/dev/null ;;
    esac
    (cd "$dir" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$WORK/rootfs-$1.img"
}
rootfs_cpio squashfs root.squashfs
rootfs_cpio erofs root.erofs
cat "$WORK/initramfs.img" "$WORK/rootfs-squashfs.img" >"$WORK/combined-squashfs.img"
cat "$WORK/initramfs.img" "$WORK/rootfs-erofs.img" >"$WORK/combined-erofs.img"
cat "$WORK/initramfs-missing-module.img" "$WORK/rootfs-squashfs.img" >"$WORK/combined-missing-module.img"

truncate -s 64M "$WORK/state.img"
mkfs.ext4 -q -L harmony-state "$WORK/state.img"

# boot NAME CMDLINE-EXTRA [VARIANT]: (VARIANT picks combined-VARIANT.img) runs QEMU, keeps the console in $WORK/NAME.log.
boot() {
    local name=$1 extra=$2 format=${3:-squashfs} start end
    start=$(date +%s.%N)
    timeout 180 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
        -kernel "$KERNEL" -initrd "$WORK/combined-$format.img" \
        -append "console=ttyS0 panic=-1 $extra" \
        -drive file="$WORK/state.img",if=virtio,format=raw \
        </dev/null >"$WORK/$name.log" 2>&1 || true
    end=$(date +%s.%N)
    log "$name: QEMU ran $(echo "$end - $start" | bc) s"
    grep -a -E 'harmony-init:|HARMONY-' "$WORK/$name.log" | tr -d '\r' >&2
}
expect() { grep -a -q -F -- "$2" "$WORK/$1.log" || { echo "FAIL: $1: no '$2' on the console" >&2; tail -n 40 "$WORK/$1.log" >&2; exit 1; }; }

boot state1 "harmony.state=harmony-state"
expect state1 "HARMONY-SMOKE: root reached, pid 1, argv0 /sbin/init"
expect state1 "state at /dev/vda ext4"
expect state1 "boots recorded: 1"
log "state disk after boot 1 (debugfs, no mount needed):"
export DEBUGFS_PAGER=__none__
debugfs -R 'ls -l /overlay/upper' "$WORK/state.img" >&2 2>/dev/null
boots=$(debugfs -R 'cat /overlay/upper/smoke-boots' "$WORK/state.img" 2>/dev/null)
echo "/overlay/upper/smoke-boots: $boots" >&2
[[ $boots == "boot at "* ]] || { echo "FAIL: /overlay/upper/smoke-boots not on the state disk" >&2; exit 1; }

boot state2 "harmony.state=harmony-state"
expect state2 "boots recorded: 2"

boot tmpfs ""
expect tmpfs "state: tmpfs"
expect tmpfs "boots recorded: 1"

boot erofs "harmony.root=/harmony/root.erofs" erofs
expect erofs "(erofs) on /dev/loop0"
expect erofs "boots recorded: 1"

boot nolabel "harmony.state=no-such-label" missing-module
expect nolabel "warning: module /usr/lib/modules/$KVER/kernel/missing/optional.ko not loaded"
expect nolabel "root /harmony/root.squashfs (squashfs) on /dev/loop0"
expect nolabel "modules that failed to load earlier: /usr/lib/modules/$KVER/kernel/missing/optional.ko (open: No such file"
expect nolabel 'HARMONY-INIT-ERROR: no block device with ext4 label "no-such-label" appeared within 30 s'
if grep -a -q "HARMONY-SMOKE" "$WORK/nolabel.log"; then echo "FAIL: booted without its state disk" >&2; exit 1; fi

log "PASS"
