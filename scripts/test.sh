#!/usr/bin/env bash
# Install host tools, build the static binaries, check the lints, run every test (unit and
# QEMU end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then ./scripts/setup-host.sh; fi
./scripts/build.sh
# The workspace's lints (Cargo.toml, clippy.toml): no unwrap outside tests, a SAFETY
# comment on every unsafe block, and clippy's defaults, as errors.
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --workspace --release --no-fail-fast
