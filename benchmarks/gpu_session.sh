#!/usr/bin/env bash
# The one device call of a GPU session: CUDA tests + the CUDA benchmarks, results under $OUT.
#   OUT=... bash benchmarks/gpu_session.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
# the README's B=32, T=500 rows (same script as the CPU table) first: quick and comparable
timeout -k 5 100 python3 benchmarks/bench_graph.py --device cuda --repeat 10 \
  --json "$OUT/bench_graph_cuda.json" 2>&1 | tee "$OUT/bench_graph_cuda.log"
BENCH_TOTAL_S=${BENCH_TOTAL_S:-380} bash benchmarks/bench_gpu.sh
