#!/usr/bin/env bash
# Runs the same two shapes in pai and in LangGraph (fake model, 50 ms and zero latency)
# and prints both side by side. Installs LangGraph from PyPI into benches/peers/.venv
# the first time. Never run in CI.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet langgraph
fi
echo "== pai"
(cd ../.. && cargo bench --quiet --bench run 2>/dev/null)
echo "== langgraph"
.venv/bin/python langgraph_shapes.py 0.05
.venv/bin/python langgraph_shapes.py 0
