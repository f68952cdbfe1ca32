#!/usr/bin/env bash
# The whole product on a fresh Debian 12 machine: install host tools, build Harmony,
# build the default image (its base made from Debian packages on first use) and boot it
# in QEMU with a sample Ignition config, until the agent reports the node configured.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
./scripts/build.sh
./target/release/harmony build --out harmony-out
./target/release/harmony run harmony-out --ignition examples/sample.ign
