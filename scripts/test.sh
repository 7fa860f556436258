#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, in-process and the multi-process tests
# that drive the built swarmd/swarmctl binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
# The end-to-end tests run swarmctl next to swarmd: build every binary first.
cargo build --workspace --bins
cargo test --workspace "$@"
