#!/usr/bin/env bash
# Build harmony (the builder) and the static binaries every image carries:
# harmony-agent (first boot) and harmony-init (the initramfs's /init), and the EFI stub
# of the unified kernel image on disk images (a freestanding shared object the builder
# converts to PE32+; no red zone, as firmware interrupts run on the caller's stack).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p harmony-builder
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --target x86_64-unknown-linux-gnu -p harmony-agent -p harmony-init
cargo rustc --profile efi-stub -p harmony-efi-stub --lib --crate-type cdylib -- -C no-redzone=yes
