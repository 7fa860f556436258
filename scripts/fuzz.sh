#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of every target in crates/fuzz-targets.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target)
# New inputs that reach new code are added to fuzz/corpus/<target>/ (commit the useful ones);
# a crash is written to fuzz/artifacts/<target>/ and stops that target's run. CI does not run
# this: it replays the corpus (cargo test -p swarm-fuzz-targets --test corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
for t in "${targets[@]}"; do
  echo "== $t: ${secs} s"
  # rss_limit: a decoder that allocates by a length prefix fails here, not in production.
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|==[0-9]+==|SUMMARY|Done)|panicked|ERROR' || true
done
