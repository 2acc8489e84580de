"""Per-pass CUDA timings of every launch config of the fused kernels (the tuner's choices).

    python benchmarks/bench_splits.py --json $OUT/splits.json [--batch 8 32 128] [--frames 500]

For the benchmark's trigram x loop (block kernels) and 4-gram x loop at beam 256 (pruned
kernels), each candidate config is forced in turn and its forward and backward kernels are
timed separately (median of CUDA-event-timed runs), so the notes can say where the time goes
and how the split of an utterance over ``P`` programs pays off with the batch size.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_gpu import timed  # noqa: E402
from benchmarks.graphs import V, fourgram_graph, trigram_loop_graph  # noqa: E402
import uasr.graph.triton_kernels as tk  # noqa: E402
import uasr.graph.triton_pruned as tp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--frames", type=int, nargs="+", default=[500])
    args = p.parse_args(argv)
    dev = "cuda"
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "rows": []}
    tri, four = trigram_loop_graph().to(dev), fourgram_graph().to(dev)
    blk = tk._block_plan(tri).fwd
    for T in args.frames:
        for B in args.batch:
            gen = torch.Generator().manual_seed(B * 1000 + T)
            em = torch.randn(B, T, V, generator=gen).log_softmax(-1).to(dev)
            lens = torch.full((B,), T, dtype=torch.int64, device=dev)
            g = torch.ones(B, device=dev)
            for cfg in tk.block_configs(*tk._tile(blk), blk.K):
                try:
                    tk.FORCE_CONFIG = cfg
                    fwd = timed(lambda: tk.triton_forward(em, lens, tri), dev)
                    _, ctx, trans = tk.triton_forward(em, lens, tri)
                    bwd = timed(lambda: tk.triton_backward(ctx, g, trans, False, num_labels=V),
                                dev)
                    row = {"graph": "trigram_loop", "B": B, "T": T, "cfg": cfg,
                           "fwd_ms": round(fwd, 3), "bwd_ms": round(bwd, 3)}
                except Exception as e:  # noqa: BLE001 - record and go on
                    row = {"graph": "trigram_loop", "B": B, "T": T, "cfg": cfg,
                           "error": repr(e)[:200]}
                finally:
                    tk.FORCE_CONFIG = None
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
            NP, KP, DP = tp._next_pow2(256 * 41, 16), tp._next_pow2(256, 16), tp._next_pow2(41, 2)

            def fwd() -> dict:
                ms = timed(lambda: tp.pruned_forward_triton(em, lens, four, 256), dev,
                           max_reps=5, budget_s=1.0)
                steps = float(tp.STATS["steps"].float().mean()) / (T - 1)
                return {"ms": round(ms, 3), "steps_per_frame": round(steps, 2)}

            total, pctx = tp.pruned_forward_triton(em, lens, four, 256)

            def bwd() -> dict:
                ms = timed(lambda: tp.pruned_backward_triton(pctx, total, g, lens, four, V),
                           dev, max_reps=5, budget_s=1.0)
                return {"ms": round(ms, 3)}

            for name, cfgs, measure in (("fwd", tp.fwd_configs(NP), fwd),
                                        ("bwd", tp.bwd_configs(KP, DP), bwd)):
                for cfg in cfgs:
                    row = {"graph": "fourgram_pruned", "pass": name, "B": B, "T": T, "cfg": cfg}
                    setattr(tp, f"FORCE_{name.upper()}", cfg)
                    try:
                        row.update(measure())
                    except Exception as e:  # noqa: BLE001 - record and go on
                        traceback.print_exc()
                        row["error"] = repr(e)[:200]
                    finally:
                        setattr(tp, f"FORCE_{name.upper()}", None)
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
