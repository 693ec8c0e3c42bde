#!/usr/bin/env bash
# Gateway overhead of Keel's quick proxy mode beside a direct call and a plain nginx hop, with
# the shared side-by-side harness (../shared/bench/run.sh; it installs nginx and oha itself).
# Usage: bench/gateway.sh [DUR seconds per point, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
export PATH="$HOME/.cargo/bin:$PATH"
export BENCH_WORK="${BENCH_WORK:-/tmp/keel-gateway-bench}" DUR="${1:-10}"
# Honour CARGO_TARGET_DIR (a worktree may build elsewhere than ./target).
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/keel"
export KEEL_CMD="$BIN --data-dir $BENCH_WORK/keel-data serve --listen 127.0.0.1:8090 --openai-base-url http://127.0.0.1:18080/v1 --model gpt-4o-mini --no-auth"
bash ../shared/bench/run.sh direct hop keel
cat "$BENCH_WORK/results/summary.md"
