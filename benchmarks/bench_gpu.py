"""CUDA benchmark of the graph engine (fused Triton kernels) against cuDNN's F.ctc_loss.

    python benchmarks/bench_gpu.py --json $OUT/bench_gpu.json [--budget 300]

For every B in {8, 32, 128} and T in {200, 500, 1000} (V = 41) it times forward + backward
(median over CUDA-event-timed runs after warm-up) of ``total_score`` on the rows
``bigram_loop``, ``trigram_loop``, ``fourgram_pruned`` (beam k=256) and ``ctc`` (our engine
on per-utterance CTC graphs of the 100-label targets), and of ``F.ctc_loss`` on the same
batch in the same run: ``ratio = ms / ctc_ms``. Graphs come from ``benchmarks/graphs.py``
(the same builders as bench_graph.py). Before timing, the Triton results are checked
against the torch backends at B=8, T=200 (``checks`` in the JSON).

Robust by design: each row is in its own try/except, rows are measured in priority order
(bigram/trigram first), and no new measurement starts after ``--budget`` seconds.
Writes ``{"device", "torch", "triton", "rows": [...], "checks": [...], "configs": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.graphs import V, bigram_loop_graph, fourgram_graph, trigram_loop_graph  # noqa: E402
from uasr.graph import Graph, ctc, linear_graph, total_score  # noqa: E402
import uasr.graph.triton_kernels as tk  # noqa: E402

U = 100  # CTC target length
BATCHES = (8, 32, 128)
FRAMES = (200, 500, 1000)


def timed(fn: Callable[[], None], device: str, max_reps: int = 15, budget_s: float = 1.0,
          warmup: int = 2) -> float:
    """Median milliseconds of ``fn`` (device events on CUDA), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    t0 = time.perf_counter()
    while len(times) < max_reps:
        if device == "cuda":
            torch.cuda.synchronize()
            ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            ev0.record()
            fn()
            ev1.record()
            ev1.synchronize()
            times.append(ev0.elapsed_time(ev1))
        else:
            s = time.perf_counter()
            fn()
            times.append((time.perf_counter() - s) * 1e3)
        if len(times) >= 3 and time.perf_counter() - t0 > budget_s:
            break
    return statistics.median(times)


class Batch:
    """Random logits, full lengths and 100-label targets for one (B, T)."""

    def __init__(self, B: int, T: int, device: str, seed: int = 0):
        gen = torch.Generator().manual_seed(seed + 1000 * B + T)
        self.B, self.T, self.device = B, T, device
        self.logits = torch.randn(B, T, V, generator=gen).to(device)
        self.lengths = torch.full((B,), T, dtype=torch.int64, device=device)
        self.targets = torch.randint(1, V, (B, U), generator=gen)
        self._ctc_graph: Optional[Graph] = None

    def ctc_graph(self) -> Graph:
        if self._ctc_graph is None:
            self._ctc_graph = Graph.batch([linear_graph(y.tolist(), ctc()) for y in self.targets])
            self._ctc_graph = self._ctc_graph.to(self.device)
        return self._ctc_graph


def ctc_reference(batch: Batch) -> tuple[float, dict]:
    """F.ctc_loss fwd+bwd: the cuDNN form (1-D int32 CPU targets) and the native form; the
    faster one is the reference (``ctc_ms``), both are reported."""
    B, T, dev = batch.B, batch.T, batch.device
    tl_cpu = torch.full((B,), U, dtype=torch.int32)
    il_cpu = torch.full((B,), T, dtype=torch.int32)
    flat = batch.targets.reshape(-1).to(torch.int32)
    tg_dev = batch.targets.to(dev)
    info: dict = {}
    try:
        lp = batch.logits.log_softmax(-1).transpose(0, 1)
        info["cudnn_eligible"] = bool(torch._use_cudnn_ctc_loss(lp, flat, il_cpu.tolist(),
                                                                 tl_cpu.tolist(), 0))
    except Exception as e:  # private API: informative only
        info["cudnn_eligible"] = f"unknown ({type(e).__name__})"

    def cudnn_form():
        x = batch.logits.detach().requires_grad_(True)
        loss = F.ctc_loss(x.log_softmax(-1).transpose(0, 1), flat, il_cpu, tl_cpu,
                          reduction="sum", zero_infinity=False)
        loss.backward()

    def native_form():
        x = batch.logits.detach().requires_grad_(True)
        loss = F.ctc_loss(x.log_softmax(-1).transpose(0, 1), tg_dev, batch.lengths,
                          torch.full((B,), U, dtype=torch.int64, device=dev), reduction="sum")
        loss.backward()

    times = {}
    for name, fn in (("cudnn_form", cudnn_form), ("native_form", native_form)):
        try:
            times[name] = timed(fn, dev, max_reps=20)
        except Exception as e:
            info[name + "_error"] = repr(e)[:200]
    info.update({k + "_ms": round(v, 4) for k, v in times.items()})
    return min(times.values()), info


def our_step(batch: Batch, graph: Graph, beam: Optional[int], backend: str, backward: bool = True):
    def fn():
        x = batch.logits.detach().requires_grad_(backward)
        tot = total_score(x.log_softmax(-1), batch.lengths, graph, beam=beam, backend=backend)
        if backward:
            (-tot.sum()).backward()
    return fn


def core_step(batch: Batch, graph: Graph):
    """The kernels alone (log_softmax + triton_forward + triton_backward(num_labels=V)),
    without score.py's checks and syncs: what total_score costs if score.py asks the
    backward for the per-label gradient directly."""
    def fn():
        x = batch.logits.log_softmax(-1)
        total, ctx, trans = tk.triton_forward(x, batch.lengths, graph)
        tk.triton_backward(ctx, -torch.ones_like(total), trans, False, num_labels=V)
    return fn


def check_triton(graph: Graph, ref_backend: str, device: str, B: int = 8, T: int = 200) -> dict:
    """Triton vs a torch backend on random lengths: totals and emission gradients."""
    gen = torch.Generator().manual_seed(7)
    em = torch.randn(B, T, V, generator=gen).log_softmax(-1).to(device)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=gen).to(device)
    lengths[0] = T
    out = {}
    for be in (ref_backend, "triton"):
        x = em.clone().requires_grad_(True)
        tot = total_score(x, lengths, graph, backend=be)
        (g,) = torch.autograd.grad(tot.sum(), x)
        out[be] = (tot.detach().double(), g.double())
    (t0, g0), (t1, g1) = out[ref_backend], out["triton"]
    return {"ref": ref_backend, "B": B, "T": T,
            "total_rel_err": float((t1 - t0).norm() / t0.norm()),
            "grad_rel_err": float((g1 - g0).norm() / g0.norm()),
            "finite": bool(torch.isfinite(t1).all() and torch.isfinite(g1).all())}


def _f(x: Optional[float]) -> float:
    return math.nan if x is None else x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--budget", type=float, default=300.0, help="seconds; no new row after this")
    p.add_argument("--batch", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--frames", type=int, nargs="+", default=list(FRAMES))
    p.add_argument("--rows", nargs="+",
                   default=["bigram_loop", "trigram_loop", "fourgram_pruned", "ctc"])
    args = p.parse_args(argv)
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible")
    start = time.perf_counter()
    try:
        import triton
        triton_version = triton.__version__
    except Exception:
        triton_version = None
    result: dict = {"device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
                    "torch": torch.__version__, "triton": triton_version, "rows": [],
                    "checks": [], "configs": {}, "skipped": []}

    def save():
        result["configs"] = {" ".join(map(str, k)): v for k, v in tk._BEST.items()}
        result["elapsed_s"] = round(time.perf_counter() - start, 1)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")

    t = time.perf_counter()
    graphs: dict[str, tuple[Graph, Optional[int], str]] = {}
    builders = {"bigram_loop": (bigram_loop_graph, None, "auto"),
                "trigram_loop": (trigram_loop_graph, None, "auto"),
                # the beam path ignores the backend; "sparse" skips choose_backend's
                # pure-Python block-layout scan of the 2.6M-arc graph
                "fourgram_pruned": (fourgram_graph, 256, "sparse")}
    for name in args.rows:
        if name in builders:
            try:
                build, beam, backend = builders[name]
                graphs[name] = (build().to(dev), beam, backend)
            except Exception:
                traceback.print_exc()
    print(f"graphs built in {time.perf_counter() - t:.1f}s", flush=True)

    # correctness of the compiled kernels (and their tuned configs) first
    for name, ref in (("bigram_loop", "dense"), ("trigram_loop", "block")):
        if name not in graphs:
            continue
        try:
            graph = graphs[name][0]
            x = torch.zeros(1, 2, V, device=dev)
            uses = tk.triton_supports(graph, x)
            chk = check_triton(graph, ref, dev) if uses else {"skipped": "triton_supports False"}
            chk.update(name=name, triton_supported=uses)
        except Exception as e:
            traceback.print_exc()
            chk = {"name": name, "error": repr(e)[:300]}
        result["checks"].append(chk)
        print("check", json.dumps(chk), flush=True)
    save()

    # measurement plan: the main targets first, the slow torch-loop rows last
    prio = {"bigram_loop": 0, "trigram_loop": 1, "fourgram_pruned": 2, "ctc": 3}
    plan = sorted(((prio.get(n, 9), T, B, n) for n in args.rows for T in args.frames
                   for B in args.batch))
    batches: dict[tuple[int, int], Batch] = {}
    ctc_ms: dict[tuple[int, int], tuple[float, dict]] = {}
    header = (f"{'name':<16}{'B':>5}{'T':>6}{'S':>7}{'A':>9}{'ms':>10}{'fwd_ms':>9}{'core_ms':>9}"
              f"{'ctc_ms':>9}{'ratio':>8}")
    print(header, flush=True)
    for _, T, B, name in plan:
        if time.perf_counter() - start > args.budget:
            result["skipped"].append({"name": name, "B": B, "T": T, "why": "time budget"})
            continue
        try:
            key = (B, T)
            if key not in batches:
                batches[key] = Batch(B, T, dev)
            batch = batches[key]
            if key not in ctc_ms:
                ctc_ms[key] = ctc_reference(batch)
            cms, cinfo = ctc_ms[key]
            if name == "ctc":
                graph, beam, backend = batch.ctc_graph(), None, "auto"
            else:
                graph, beam, backend = graphs[name]
            used = backend
            if beam is None and backend == "auto":
                used = "triton" if tk.triton_supports(graph, batch.logits) else "torch(auto)"
            elif beam is not None:
                used = f"pruned(k={beam})"
            slow = name in ("ctc", "fourgram_pruned")
            ms = timed(our_step(batch, graph, beam, backend), dev,
                       max_reps=5 if slow else 15, budget_s=2.0 if slow else 1.0,
                       warmup=1 if slow else 2)
            fwd = core = None
            if name in ("bigram_loop", "trigram_loop"):
                fwd = timed(our_step(batch, graph, beam, backend, backward=False), dev)
                if used == "triton":
                    core = timed(core_step(batch, graph), dev)
            row = {"name": name, "B": B, "T": T, "V": V, "states": graph.num_states,
                   "arcs": graph.num_arcs, "ms": round(ms, 4), "ctc_ms": round(cms, 4),
                   "ratio": round(ms / cms, 3), "fwd_ms": None if fwd is None else round(fwd, 4),
                   "core_ms": None if core is None else round(core, 4),
                   "backend": used, "ctc_info": cinfo}
            result["rows"].append(row)
            print(f"{name:<16}{B:>5}{T:>6}{graph.num_states:>7}{graph.num_arcs:>9}{ms:>10.3f}"
                  f"{_f(fwd):>9.3f}{_f(core):>9.3f}{cms:>9.3f}{ms / cms:>8.2f}", flush=True)
        except Exception as e:
            traceback.print_exc()
            result["rows"].append({"name": name, "B": B, "T": T, "V": V, "error": repr(e)[:300]})
        save()
        if dev == "cuda":
            torch.cuda.empty_cache()

    # final table, sorted as name x T x B
    print("\n== table")
    print(result["device"] + f"  torch {torch.__version__}  triton {triton_version}")
    print(header)
    order = {n: i for i, n in enumerate(args.rows)}
    for r in sorted(result["rows"], key=lambda r: (order.get(r["name"], 9), r["T"], r["B"])):
        if "error" in r:
            print(f"{r['name']:<16}{r['B']:>5}{r['T']:>6}  ERROR {r['error'][:80]}")
            continue
        print(f"{r['name']:<16}{r['B']:>5}{r['T']:>6}{r['states']:>7}{r['arcs']:>9}"
              f"{r['ms']:>10.3f}{_f(r['fwd_ms']):>9.3f}{_f(r['core_ms']):>9.3f}"
              f"{r['ctc_ms']:>9.3f}{r['ratio']:>8.2f}")
    for s in result["skipped"]:
        print(f"skipped {s}")
    print("tuned configs:", json.dumps(result["configs"]))
    save()
    print(f"wrote {args.json} ({result['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
