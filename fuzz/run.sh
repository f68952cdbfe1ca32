#!/usr/bin/env bash
# Fuzz one target for a wall time: fuzz/run.sh TARGET SECONDS [libFuzzer args…]
# TARGET: ignition_config | cloud_config | gpt | init_cmdline | stub_cmdline | smbios |
# nocloud_iso9660 | nocloud_fat | tftp | ovf_env | oci_documents | tar_layer | dbus_message
# (every parser fed from outside the trust boundary; docs/security.md). Stable Rust: the SanitizerCoverage passes that
# cargo-fuzz would ask for are given to rustc directly (with --target, so build scripts
# are not instrumented); no sanitizer runtime is linked.
# Seeds: the differential corpus (Ignition) or the cloud-config corpus and Debian's
# cloud-init examples; new inputs go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
shift 2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --target x86_64-unknown-linux-gnu --bin "$target"
# A NoCloud seed as iso9660 (without the 32 KiB system area the target adds back) and as
# vfat, and a 64 KiB GPT disk behind the gpt target's control byte (0x80: seal).
make_seeds() {
  local dir=$2 tmp
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
  mkdir -p "$dir"; tmp=$(mktemp -d)
  printf '#cloud-config\nhostname: fuzz\n' > "$tmp/user-data"
  printf 'instance-id: fuzz\n' > "$tmp/meta-data"
  case "$1" in
    nocloud_iso9660) genisoimage -quiet -output "$tmp/seed.iso" -volid cidata -joliet -rock \
        "$tmp/user-data" "$tmp/meta-data" && tail -c +32769 "$tmp/seed.iso" > "$dir/seed" ;;
    nocloud_fat) mkfs.vfat -C -n CIDATA "$tmp/seed.img" 64 >/dev/null &&
        mcopy -i "$tmp/seed.img" "$tmp/user-data" "$tmp/meta-data" :: && cp "$tmp/seed.img" "$dir/seed" ;;
    gpt) truncate -s 64K "$tmp/disk" &&
        printf 'label: gpt\nfirst-lba: 40\nstart=40, size=16, name=harmony-root\n' | sfdisk -q "$tmp/disk" &&
        { printf '\x88'; cat "$tmp/disk"; } > "$dir/seed" ;;
  esac
  rm -rf "$tmp"
}
case "$target" in
  ignition_config) seeds=(../agent/tests/corpus) ;;
  cloud_config) seeds=(../ignition/src/cloud_config/corpus)
    [ -d /usr/share/doc/cloud-init/examples ] && seeds+=(/usr/share/doc/cloud-init/examples) ;;
  # Volumes and disks start from real ones made by the reference tools (random bytes never
  # pass their magic numbers and CRCs), in corpus/TARGET-seeds/.
  gpt|nocloud_iso9660|nocloud_fat) seeds=("corpus/$target-seeds"); set -- -max_len=524288 "$@"
    make_seeds "$target" "corpus/$target-seeds" ;;
  init_cmdline|stub_cmdline|smbios|tftp|ovf_env|oci_documents|tar_layer|dbus_message) seeds=() ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "corpus/$target" "artifacts/$target"
exec "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/$target" "corpus/$target" ${seeds[@]+"${seeds[@]}"} \
  -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@"
