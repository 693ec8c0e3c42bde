#!/usr/bin/env bash
# Embedding throughput: Keel's in-process MiniLM vs sentence-transformers (PyTorch, 2 threads)
# on the same texts, interleaved in one run (keel, torch, keel, torch) so machine noise hits
# both. Prints each run and the ratio of medians.
# Usage: bench/embed_compare.sh [DATA.jsonl] [LIMIT]   (needs: a venv with sentence-transformers
# at $ST_PYTHON, default /opt/stbench/bin/python; the model from `keel models fetch`)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/retrieval/scifact/corpus.jsonl}"
LIMIT="${2:-300}"
ST_PYTHON="${ST_PYTHON:-/opt/stbench/bin/python}"
KEEL="${KEEL:-target/release/keel}"
MODEL_DIR="$($KEEL models path)"
out=$(mktemp)
for i in 1 2; do
  "$KEEL" bench embed --data "$DATA" --limit "$LIMIT" --json >> "$out"
  "$ST_PYTHON" bench/embed_st.py "$MODEL_DIR" "$DATA" "$LIMIT" 2>/dev/null >> "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    print(f"{r['engine']:<48} {r['texts']} texts  {r['passages_per_s']:.1f} passages/s")
k = statistics.median(r["passages_per_s"] for r in rows if r["engine"] == "keel-embed")
t = statistics.median(r["passages_per_s"] for r in rows if r["engine"] != "keel-embed")
print(json.dumps({"keel_passages_per_s": round(k, 2), "torch_passages_per_s": round(t, 2), "ratio": round(k / t, 3)}))
PY
