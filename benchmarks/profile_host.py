"""Where the host time of one ``total_score`` forward + backward goes (CUDA, bigram_loop).

    python benchmarks/profile_host.py --out $OUT/profile_host.txt

For small graphs the fused kernels take well under a millisecond, so the Python/launch work
around them decides the ratio to F.ctc_loss. For each (B, T) this prints the synced wall
time of a step, the host time until the step returns (no final sync), and torch.profiler's
table of operators by self CPU time over 10 steps: what to trim next.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.graphs import V, bigram_loop_graph  # noqa: E402
from uasr.graph import total_score  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shapes", nargs="+", default=["32x500", "8x200"], help="BxT")
    args = p.parse_args(argv)
    graph = bigram_loop_graph().to("cuda")
    lines = [f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}"]
    for shape in args.shapes:
        B, T = map(int, shape.split("x"))
        logits = torch.randn(B, T, V, device="cuda")
        lengths = torch.full((B,), T, dtype=torch.int64, device="cuda")

        def step() -> None:
            x = logits.detach().requires_grad_(True)
            (-total_score(x.log_softmax(-1), lengths, graph).sum()).backward()

        for _ in range(5):
            step()
        wall, host = [], []
        for _ in range(30):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            t1 = time.perf_counter()
            torch.cuda.synchronize()
            host.append((t1 - t0) * 1e3)
            wall.append((time.perf_counter() - t0) * 1e3)
        lines.append(f"\nbigram_loop B={B} T={T}: wall {statistics.median(wall):.3f} ms, host until "
                     f"return {statistics.median(host):.3f} ms (medians of 30)")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                step()
            torch.cuda.synchronize()
        lines.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:1] + [ln for ln in lines if ln.startswith("\nbigram")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
