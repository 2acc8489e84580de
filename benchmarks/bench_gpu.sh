#!/usr/bin/env bash
# One call on a lent CUDA GPU: the graph tests on CUDA, then the CUDA benchmark. Installs
# nothing; every step is time-bounded and a failing step does not stop the next one.
#
#   OUT=/path/to/outdir bash benchmarks/bench_gpu.sh        # about 6-7 minutes on an H100
#
# Writes $OUT/bench_gpu.json (rows as bench_graph.py + checks/configs), $OUT/bench.log,
# $OUT/pytest_triton.log, $OUT/pytest_graph.log, $OUT/env.txt. PYTHON overrides python3.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/bench_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
T0=$(date +%s)
TOTAL=${BENCH_TOTAL_S:-450}  # whole script, seconds
elapsed() { echo $(( $(date +%s) - T0 )); }

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv 2>&1
  $PY -c "import sys, torch, triton; print(sys.version.split()[0], torch.__version__, triton.__version__, torch.cuda.get_device_name(0), torch.backends.cudnn.version())" 2>&1
} | tee "$OUT/env.txt"

PT_ARGS=(-q -p no:cacheprovider)
if $PY -c "import pytest_timeout" 2>/dev/null; then PT_ARGS+=(--timeout 140); fi

# 1) the Triton tests (CUDA, compiled), then the rest of tests/graph
echo "== pytest tests/graph/test_triton.py (<=150 s)"
timeout -k 10 150 $PY -m pytest "${PT_ARGS[@]}" tests/graph/test_triton.py > "$OUT/pytest_triton.log" 2>&1
echo "rc=$?"; tail -n 15 "$OUT/pytest_triton.log"
echo "== pytest tests/graph (the rest, <=100 s) at $(elapsed) s"
timeout -k 10 100 $PY -m pytest "${PT_ARGS[@]}" tests/graph --ignore=tests/graph/test_triton.py \
  > "$OUT/pytest_graph.log" 2>&1
echo "rc=$?"; tail -n 15 "$OUT/pytest_graph.log"

# 2) the benchmark in the time that is left (it starts no new row after --budget)
LEFT=$(( TOTAL - $(elapsed) ))
BUDGET=$(( LEFT - 60 )); [ "$BUDGET" -lt 90 ] && BUDGET=90
echo "== benchmark (budget ${BUDGET} s) at $(elapsed) s"
timeout -k 10 $(( BUDGET + 60 )) $PY benchmarks/bench_gpu.py --json "$OUT/bench_gpu.json" \
  --budget "$BUDGET" > "$OUT/bench.log" 2>&1
echo "rc=$?"
# the reply shows the end of the output: the table last
grep -E "^check|Traceback|Error" "$OUT/bench.log" | head -n 20
sed -n '/^== table/,$p' "$OUT/bench.log" | tail -n 60
echo "total $(elapsed) s"
