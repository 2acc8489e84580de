#!/usr/bin/env bash
# The one device call of a GPU session: CUDA tests of the fused kernels, the README's
# B=32 T=500 rows, a host-time profile of the bigram call, fused vs torch Viterbi, per-config
# pass timings (bench_splits.py), the B x T grid in the time left, then the rest of the graph
# tests.
#   OUT=... BENCH_TOTAL_S=420 bash benchmarks/gpu_session.sh
# Installs nothing; every step is time-bounded and a failing step does not stop the next.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/bench_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
T0=$(date +%s)
TOTAL=${BENCH_TOTAL_S:-420}
elapsed() { echo $(( $(date +%s) - T0 )); }
PT=(-q -p no:cacheprovider)

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  $PY -c "import sys, torch, triton; print(sys.version.split()[0], torch.__version__, triton.__version__, torch.cuda.get_device_name(0), torch.backends.cudnn.version())" 2>&1
} | tee "$OUT/env.txt"

echo "== pytest test_triton.py test_triton_pruned.py (<=200 s)"
timeout -k 5 200 $PY -m pytest "${PT[@]}" tests/graph/test_triton.py tests/graph/test_triton_pruned.py \
  > "$OUT/pytest_triton.log" 2>&1
echo "rc=$?"; tail -n 12 "$OUT/pytest_triton.log"

echo "== bench_graph.py --device cuda (<=120 s) at $(elapsed) s"
timeout -k 5 120 $PY benchmarks/bench_graph.py --device cuda --repeat 10 \
  --json "$OUT/bench_graph_cuda.json" > "$OUT/bench_graph_cuda.log" 2>&1
echo "rc=$?"; tail -n 14 "$OUT/bench_graph_cuda.log"

echo "== profile_host.py bigram_loop (<=60 s) at $(elapsed) s"
timeout -k 5 60 $PY benchmarks/profile_host.py --out "$OUT/profile_host.txt" > "$OUT/profile_host.log" 2>&1
echo "rc=$?"; tail -n 4 "$OUT/profile_host.log"

echo "== bench_viterbi.py bigram, trigram, pruned 4-gram (<=200 s) at $(elapsed) s"
timeout -k 5 200 $PY benchmarks/bench_viterbi.py --json "$OUT/bench_viterbi.json" > "$OUT/bench_viterbi.log" 2>&1
echo "rc=$?"; tail -n 9 "$OUT/bench_viterbi.log"

echo "== bench_splits.py B=8,32,128 T=500 (<=120 s) at $(elapsed) s"
timeout -k 5 120 $PY benchmarks/bench_splits.py --json "$OUT/splits.json" > "$OUT/splits.log" 2>&1
echo "rc=$?"; grep -c '"ms"' "$OUT/splits.log"

BUDGET=$(( TOTAL - $(elapsed) - 90 ))
if [ "$BUDGET" -ge 60 ]; then
  echo "== bench_gpu.py grid (budget ${BUDGET} s) at $(elapsed) s"
  timeout -k 5 $(( BUDGET + 45 )) $PY benchmarks/bench_gpu.py --json "$OUT/bench_gpu.json" \
    --budget "$BUDGET" > "$OUT/bench.log" 2>&1
  echo "rc=$?"; grep -E "^check|Traceback|Error|configs" "$OUT/bench.log" | head -n 12
fi

LEFT=$(( TOTAL - $(elapsed) ))
if [ "$LEFT" -ge 40 ]; then
  echo "== pytest tests/graph (the rest, <= $(( LEFT - 10 )) s) at $(elapsed) s"
  timeout -k 5 $(( LEFT - 10 )) $PY -m pytest "${PT[@]}" tests/graph \
    --ignore=tests/graph/test_triton.py --ignore=tests/graph/test_triton_pruned.py \
    > "$OUT/pytest_graph.log" 2>&1
  echo "rc=$?"; tail -n 6 "$OUT/pytest_graph.log"
fi
echo "total $(elapsed) s"
