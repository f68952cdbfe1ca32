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
case "$target" in
  ignition_config) seeds=(../agent/tests/corpus) ;;
  cloud_config) seeds=(../ignition/src/cloud_config/corpus)
    [ -d /usr/share/doc/cloud-init/examples ] && seeds+=(/usr/share/doc/cloud-init/examples) ;;
  # No seeds: the fuzzer builds these inputs from nothing; volumes and disks need room.
  gpt|nocloud_iso9660|nocloud_fat) seeds=(); set -- -max_len=131072 "$@" ;;
  init_cmdline|stub_cmdline|smbios|tftp|ovf_env|oci_documents|tar_layer|dbus_message) seeds=() ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "corpus/$target" "artifacts/$target"
exec "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/$target" "corpus/$target" ${seeds[@]+"${seeds[@]}"} \
  -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@"
