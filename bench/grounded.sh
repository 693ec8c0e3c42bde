#!/usr/bin/env bash
# Latency of the grounded pipeline (extractive answerer) over HTTP: POST /v1/answer with oha,
# c=1 and c=4, DUR seconds each, on the sample knowledge base, in two configurations:
#   snapshot   — the default `[answer] deterministic = true`: a repeated question is answered
#                from its stored snapshot (what a client asking the same thing again gets);
#   retrieval  — `[answer] deterministic = false`: every request embeds the question, searches,
#                answers and writes its trace (the real pipeline).
# Usage: bench/grounded.sh [DUR seconds per point, default 10]
# Env: BENCH_WORK (default /tmp/keel-grounded-bench), CARGO_TARGET_DIR, PORT (8091), CONC (1,4).
# Needs the embedding model (`keel models fetch`, once) and oha (../shared/bench/run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
DUR="${1:-10}"; W="${BENCH_WORK:-/tmp/keel-grounded-bench}"; PORT="${PORT:-8091}"; CONC="${CONC:-1,4}"
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/keel"
[ -x "$BIN" ] || cargo build --release
mkdir -p "$W/results"
"$BIN" models fetch >/dev/null
"$BIN" --data-dir "$W/kb" ingest sample-kb >/dev/null
printf '[answer]\ndeterministic = false\n' > "$W/retrieval.toml"
printf '{"question":"How long do I have to return an item?"}' > "$W/question.json"

PID=""
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT
row() {  # name conc json -> markdown row
  python3 - "$@" <<'EOF'
import json, sys
name, c, path = sys.argv[1:4]
r = json.load(open(path)); s = r["summary"]; p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
n = sum(int(v) for v in codes.values())
print(f"| {name} | {c} | {n} | {int(codes.get('200', 0))} | {s['requestsPerSec']:.1f} | "
      f"{1000*p['p50']:.2f} | {1000*p['p99']:.2f} |")
EOF
}
OUT="$W/results/grounded.md"
{ echo "| mode | c | requests | 200 | rps | p50 ms | p99 ms |"; echo "|---|---:|---:|---:|---:|---:|---:|"; } > "$OUT"
for mode in snapshot retrieval; do
  cfg=(); [ "$mode" = retrieval ] && cfg=(--config "$W/retrieval.toml")
  "$BIN" "${cfg[@]}" --data-dir "$W/kb" serve --no-auth --listen "127.0.0.1:$PORT" > "$W/keel-$mode.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.5; done
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "keel did not get ready; see $W/keel-$mode.log"; exit 1; }
  for c in ${CONC//,/ }; do
    oha --no-tui -z 3s -c "$c" -m POST -T application/json -D "$W/question.json" \
      "http://127.0.0.1:$PORT/v1/answer" >/dev/null  # warm-up
    oha --no-tui --output-format json -z "${DUR}s" -c "$c" -m POST -T application/json -D "$W/question.json" \
      "http://127.0.0.1:$PORT/v1/answer" > "$W/results/$mode-c$c.json"
    row "$mode" "$c" "$W/results/$mode-c$c.json" | tee -a "$OUT"
  done
  stop
done
cat "$OUT"
