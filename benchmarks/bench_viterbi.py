"""CUDA: ``viterbi()`` on the bigram x loop graph with the fused kernel vs the torch path.

    python benchmarks/bench_viterbi.py --json $OUT/bench_viterbi.json

Both sides in the same run on the same batch (B in {8, 32, 128}, T=500, V=41): the whole
call (max-product forward, back-pointers to the host, trace-back in Python), median of
synced wall times; ``kernel_ms`` is ``triton_viterbi`` alone. The results must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.graphs import V, bigram_loop_graph  # noqa: E402
from uasr.graph import viterbi  # noqa: E402
import uasr.graph.triton_kernels as tk  # noqa: E402


def wall_ms(fn: Callable[[], object], reps: int = 7) -> float:
    fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--frames", type=int, default=500)
    args = p.parse_args(argv)
    graph = bigram_loop_graph().to("cuda")
    rows = []
    for B in args.batch:
        gen = torch.Generator().manual_seed(B)
        em = torch.randn(B, args.frames, V, generator=gen).log_softmax(-1).cuda()
        lengths = torch.full((B,), args.frames, dtype=torch.int64, device="cuda")
        out = {}
        for mode in ("0", "1"):
            os.environ[tk.VITERBI_ENV] = mode
            out[mode] = (viterbi(em, lengths, graph),
                         wall_ms(lambda: viterbi(em, lengths, graph)))
        (ref, torch_ms), (fused, fused_ms) = out["0"], out["1"]
        kernel_ms = wall_ms(lambda: tk.triton_viterbi(em, lengths, graph))
        row = {"name": "bigram_loop", "B": B, "T": args.frames, "V": V,
               "states": graph.num_states, "torch_ms": round(torch_ms, 3),
               "fused_ms": round(fused_ms, 3), "kernel_ms": round(kernel_ms, 3),
               "speedup": round(torch_ms / fused_ms, 2),
               "same_labels": fused.labels == ref.labels,
               "max_score_diff": float((fused.scores - ref.scores).abs().max())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(0),
                                     "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
