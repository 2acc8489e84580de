"""``viterbi()`` on the bigram and trigram x loop graphs and the beam-pruned 4-gram (k=256):
the fused kernels (dense / block / pruned) vs the torch path (CUDA).

    python benchmarks/bench_viterbi.py --json $OUT/bench_viterbi.json
    python benchmarks/bench_viterbi.py --device cpu --json F   # torch path only

Both sides in the same run on the same batch (B in {8, 32, 128}, T=500, V=41): the whole
call (max-product forward, back-pointers to the host, trace-back), median of synced wall
times; ``kernel_ms`` is the fused forward alone (``triton_viterbi``; for the 4-gram the
pruned forward plus its trace-back) and ``trace_back_ms`` the host trace-back alone
(score.py's ``_trace_back`` on the torch forward's back-pointers; exact graphs only). The
results must agree.
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
from benchmarks.graphs import V, ngram_loop_graph  # noqa: E402
import uasr.graph.triton_pruned as tp  # noqa: E402
from uasr.graph import forward_backward as fb  # noqa: E402
from uasr.graph import score, viterbi  # noqa: E402
import uasr.graph.triton_kernels as tk  # noqa: E402


def wall_ms(fn: Callable[[], object], reps: int = 7) -> float:
    fn()
    times = []
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def trace_back_ms(em, lengths, graph) -> float:
    """The host trace-back alone, on the torch tropical forward's back-pointers."""
    layout = fb.LogLayout(graph, lengths)
    E = layout.gather_emissions(em, graph.labels)
    delta, bp = fb.log_forward(E, lengths, graph, layout, semiring="tropical")
    last = delta[:, -1] + graph.final.to(delta.dtype)
    scores = last.max(1).values
    return wall_ms(lambda: score._trace_back(bp, last, scores, lengths, graph, layout))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4], choices=[2, 3, 4])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = p.parse_args(argv)
    dev = args.device
    rows = [row for order in args.orders
            for row in bench(ngram_loop_graph(order).to(dev), NAMES[order], args, dev)]
    name = torch.cuda.get_device_name(0) if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    args.json.write_text(json.dumps({"device": name,
                                     "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    return 0


NAMES = {2: "bigram_loop", 3: "trigram_loop", 4: "fourgram_pruned"}
BEAM = 256  # the 4-gram's (as bench_graph.py)


def bench(graph, name: str, args, dev: str) -> list[dict]:
    beam = BEAM if name == "fourgram_pruned" else None
    env = tp.ENV if beam else tk.VITERBI_ENV
    rows = []
    for B in args.batch:
        gen = torch.Generator().manual_seed(B)
        em = torch.randn(B, args.frames, V, generator=gen).log_softmax(-1).to(dev)
        lengths = torch.full((B,), args.frames, dtype=torch.int64, device=dev)
        if dev == "cpu":
            os.environ[env] = "0"
            row = {"name": name, "B": B, "T": args.frames, "V": V,
                   "torch_ms": round(wall_ms(lambda: viterbi(em, lengths, graph, beam=beam)), 3),
                   "trace_back_ms": None if beam else round(trace_back_ms(em, lengths, graph), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        out = {}
        for mode in ("0", "1"):
            os.environ[env] = mode
            out[mode] = (viterbi(em, lengths, graph, beam=beam),
                         wall_ms(lambda: viterbi(em, lengths, graph, beam=beam)))
        (ref, torch_ms), (fused, fused_ms) = out["0"], out["1"]
        kernel_ms = wall_ms((lambda: tp.pruned_viterbi_triton(em, lengths, graph, beam)) if beam
                            else (lambda: tk.triton_viterbi(em, lengths, graph)))
        row = {"name": name, "B": B, "T": args.frames, "V": V,
               "states": graph.num_states, "torch_ms": round(torch_ms, 3),
               "fused_ms": round(fused_ms, 3), "kernel_ms": round(kernel_ms, 3),
               "trace_back_ms": None if beam else round(trace_back_ms(em, lengths, graph), 3),
               "speedup": round(torch_ms / fused_ms, 2),
               "same_labels": fused.labels == ref.labels,
               "max_score_diff": float((fused.scores - ref.scores).abs().max())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
