#!/usr/bin/env bash
# Gateway overhead of Keel's quick proxy mode beside a direct call and a plain nginx hop, with
# the shared side-by-side harness (../shared/bench/run.sh; it installs nginx and oha itself),
# for each trace setting named (one run: direct and hop once, then Keel per setting).
# Usage: bench/gateway.sh [DUR seconds per point, default 10] [SETTING...]
#   SETTING: messages (the default: every request traced with its messages), metadata,
#            sample10 (messages, 10 % of successes kept), off (no gateway traces)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
export PATH="$HOME/.cargo/bin:$PATH"
# The shared harness installs oha without --locked, which now resolves a dependency that needs a
# newer rustc than this machine's; install it from its own lock file first.
command -v oha >/dev/null || cargo install -q --locked oha --version 1.16.0
export BENCH_WORK="${BENCH_WORK:-/tmp/keel-gateway-bench}" DUR="${1:-10}"
shift || true
SETTINGS=("${@:-messages}")
[ "${#SETTINGS[@]}" -gt 0 ] || SETTINGS=(messages)
# Honour CARGO_TARGET_DIR (a worktree may build elsewhere than ./target).
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/keel"
rm -rf "$BENCH_WORK/results"
bash ../shared/bench/run.sh direct hop
for s in "${SETTINGS[@]}"; do
  case $s in
    messages) toml='trace = "messages"' ;;
    metadata) toml='trace = "metadata"' ;;
    sample10) toml=$'trace = "messages"\ntrace_sample = 0.1' ;;
    off) toml='trace = "off"' ;;
    *) echo "unknown setting $s (messages, metadata, sample10, off)" >&2; exit 2 ;;
  esac
  printf '[gateway]\n%s\n' "$toml" > "$BENCH_WORK/keel-$s.toml"
  rm -rf "$BENCH_WORK/keel-data"
  KEEL_CMD="$BIN --config $BENCH_WORK/keel-$s.toml --data-dir $BENCH_WORK/keel-data serve --listen 127.0.0.1:8090 --openai-base-url http://127.0.0.1:18080/v1 --model gpt-4o-mini --no-auth" \
    TAG="-$s" bash ../shared/bench/run.sh keel
done
cat "$BENCH_WORK/results/summary.md"
