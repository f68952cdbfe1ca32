#!/usr/bin/env bash
# Install host tools, build the static binaries, run every test (unit and QEMU end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then ./scripts/setup-host.sh; fi
./scripts/build.sh
cargo test --workspace --release --no-fail-fast
