"""Speed of the graph engine against F.ctc_loss on the same (B, T, V), measured in one run.

    python benchmarks/bench_graph.py --device cpu --json out.json

Each row times forward + backward of ``total_score`` (median of ``--repeat`` runs after a
warm-up) and of ``F.ctc_loss`` with 100-label targets on the same batch shape; ``ratio`` is
ours / ctc. Rows: ``ctc`` (our engine on per-utterance CTC graphs of the same targets),
``bigram_loop``, ``trigram_loop`` (random 40-phone LMs x loop topology, see graphs.py) and
``fourgram_pruned`` (4-gram x loop, beam k=256). Optional row (``--rows``):
``fourgram_backoff`` (a sparse Kneser-Ney 4-gram of phone text x loop, ``expand="backoff"``:
exact, no beam; ``states`` counts emitting states, ``arcs`` all arcs incl. backoff arcs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.graphs import (V, bigram_loop_graph, fourgram_backoff_graph,  # noqa: E402
                              fourgram_graph, trigram_loop_graph)
from uasr.graph import Graph, ctc, linear_graph, total_score  # noqa: E402

U = 100  # target length of the CTC reference


def timeit(fn: Callable[[], None], device: str, repeat: int) -> float:
    """Median milliseconds of ``fn`` (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def run(device: str, B: int, T: int, rows: list[str], repeat: int, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=gen).to(device)
    lengths = torch.full((B,), T, dtype=torch.int64, device=device)
    targets = torch.randint(1, V, (B, U), generator=gen).to(device)
    target_lengths = torch.full((B,), U, dtype=torch.int64, device=device)

    def ctc_ref():
        x = logits.detach().requires_grad_(True)
        loss = F.ctc_loss(x.log_softmax(-1).transpose(0, 1), targets, lengths, target_lengths,
                          reduction="sum")
        loss.backward()

    ctc_ms = timeit(ctc_ref, device, repeat)
    out = []
    for name in rows:
        beam = None
        if name == "ctc":
            graph = Graph.batch([linear_graph(y.tolist(), ctc()) for y in targets.cpu()])
        elif name == "bigram_loop":
            graph = bigram_loop_graph()
        elif name == "trigram_loop":
            graph = trigram_loop_graph()
        elif name == "fourgram_pruned":
            graph, beam = fourgram_graph(), 256
        elif name == "fourgram_backoff":
            graph = fourgram_backoff_graph()
        else:
            raise SystemExit(f"unknown row {name!r}")
        graph = graph.to(device)

        def ours():
            x = logits.detach().requires_grad_(True)
            (-total_score(x.log_softmax(-1), lengths, graph, beam=beam).sum()).backward()

        ms = timeit(ours, device, repeat)
        out.append({"name": name, "B": B, "T": T, "V": V, "states": graph.num_states,
                    "arcs": graph.num_arcs, "ms": round(ms, 3), "ctc_ms": round(ctc_ms, 3),
                    "ratio": round(ms / ctc_ms, 2)})
        print(f"{name:<16} B={B:<4} T={T:<5} S={graph.num_states:<6} A={graph.num_arcs:<8} "
              f"ours {ms:9.2f} ms   ctc {ctc_ms:8.2f} ms   ratio {ms / ctc_ms:7.2f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, nargs="+", default=[32])
    p.add_argument("--frames", type=int, nargs="+", default=[500])
    p.add_argument("--rows", nargs="+",
                   default=["ctc", "bigram_loop", "trigram_loop", "fourgram_pruned"])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (0: torch's default); recorded in the JSON")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible")
    rows = []
    for B in args.batch:
        for T in args.frames:
            rows += run(args.device, B, T, args.rows, args.repeat)
    result = {"device": device_name(args.device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
