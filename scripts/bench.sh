#!/usr/bin/env bash
# `make bench`: run every benchmark in bench/ (on demand, never in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
benches=(bench/bench_*.py)
if [[ ${#benches[@]} -eq 0 ]]; then echo "no benchmarks yet"; exit 0; fi
for bench in "${benches[@]}"; do
  echo "=== $bench"
  .venv/bin/python "$bench"
done
