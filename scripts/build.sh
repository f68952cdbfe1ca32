#!/usr/bin/env bash
# Build harmony (the builder) and the two static binaries every image carries:
# harmony-agent (first boot) and harmony-init (the initramfs's /init).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p harmony-builder
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --target x86_64-unknown-linux-gnu -p harmony-agent -p harmony-init
