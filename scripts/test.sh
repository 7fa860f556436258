#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, in-process and the multi-process tests
# that drive the built swarmd/swarmctl binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Docker executor's tests build their image from a static busybox (nothing can be pulled):
# install Debian's busybox-static when a Docker engine is here and the binary is not.
if command -v docker >/dev/null 2>&1 && docker version >/dev/null 2>&1 \
  && ! { [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; } \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing busybox-static for the Docker executor tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
# The overlay tests program the kernel with iproute2 and nftables and serve from busybox
# (httpd, nc) inside task namespaces: install what is missing.
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v nsenter >/dev/null 2>&1 || missing="$missing util-linux"
command -v busybox >/dev/null 2>&1 || missing="$missing busybox-static"
# The instruction-count guard runs the hot paths under callgrind.
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing$missing for the overlay network tests and the instruction-count guard"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# The web view test renders the page in headless Chromium: install Debian's when we can (the
# test says SKIPPED where it cannot).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the web view test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "chromium could not be installed: the web view test will be skipped"
fi
# The end-to-end tests run swarmctl next to swarmd: build every binary first.
cargo build --workspace --bins
cargo test --workspace "$@"
# The regression guard: instructions per operation of the scheduler's planning pass, store
# transactions and a Raft proposal, against crates/bench/instr-baseline.txt (fails at > 10 %
# more). Optimised code is what is counted, hence the release build. Skipped when the caller
# picked tests by name.
if [ $# -eq 0 ]; then
  cargo build --release -p swarm-bench --bin instr-guard
  "${CARGO_TARGET_DIR:-target}/release/instr-guard" check
fi
