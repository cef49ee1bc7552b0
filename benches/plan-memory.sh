#!/usr/bin/env bash
# Peak memory of `pai plan` per planned node, for the plan benchmark's two sizes.
# Usage: benches/plan-memory.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
labels() { seq -s, -f "$2%g" 0 $(($1 - 1)); }
baseline_kb=$(/usr/bin/time -v target/release/pai explain E001 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
for size in "100 100" "100 1000"; do
  set -- $size
  out=$( { /usr/bin/time -v target/release/pai plan benches/plan_workflow.pai --workflow wide \
      --arg "groups=$(labels "$1" g)" --arg "items=$(labels "$2" item-)" --format summary; } 2>&1 )
  peak_kb=$(awk '/Maximum resident/ {print $6}' <<<"$out")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' <<<"$out")
  nodes=$(( $1 * $2 + 2 * $1 + 1 ))
  echo "$nodes nodes: peak ${peak_kb} KB (baseline ${baseline_kb} KB), $(( (peak_kb - baseline_kb) * 1024 / nodes )) bytes per node, wall $wall"
done
