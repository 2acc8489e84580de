"""The fused beam-pruned Triton kernels reproduce the torch pruned path (uasr/graph/pruned.py).

Without CUDA the kernels run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET``
is set here at import, before the kernels are decorated, as in test_triton.py, and the
kernel module is reloaded if something imported it earlier); ``UASR_TRITON_PRUNED=force``
makes ``total_score`` use them for CPU tensors. With CUDA the same tests run compiled.

What is compared: totals, the kept state sets of every frame (with their log-forward scores
and emissions) and the emission gradient against the torch pruned path on graphs without
score ties; on graphs with ties (uniform initial weights, one loop weight) every frame of
the kernel's lattice is checked to be a top-k of its own previous frame, and the backward
is compared with the torch backward on that same lattice. ``k >= S`` must give the exact
total. Skipped only when the ``triton`` package itself is missing.
"""

from __future__ import annotations

import importlib
import math
import os
import pathlib
import sys
import warnings

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

import uasr.graph.triton_pruned as tp  # noqa: E402

if not CUDA and not tp._interpreting():  # pragma: no cover - only if imported earlier
    tp = importlib.reload(tp)

from uasr.graph import Graph, total_score, viterbi  # noqa: E402
from uasr.graph.pruned import out_arcs, pruned_backward, pruned_forward  # noqa: E402
from uasr.graph.score import _pruned_paths  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from benchmarks.graphs import ngram_loop_graph  # noqa: E402
from tests.graph.helpers import random_graph  # noqa: E402

DEV = "cuda" if CUDA else "cpu"
# the interpreter evaluates log(0) on masked-out lanes
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")


@pytest.fixture(autouse=True)
def _force(monkeypatch):
    monkeypatch.setenv("UASR_TRITON_PRUNED", "force")
    monkeypatch.setattr(tp, "_DISABLED", False)


def _jitter(graph: Graph, seed: int, scale: float = 0.3) -> Graph:
    """The same arcs with random init/final and perturbed weights: no score ties."""
    g = torch.Generator().manual_seed(seed)
    S, A = graph.num_states, graph.num_arcs
    return Graph(labels=graph.labels, src=graph.src, dst=graph.dst,
                 weights=graph.weights.float() + scale * torch.randn(A, generator=g),
                 init=torch.randn(S, generator=g), final=torch.randn(S, generator=g))


def _with_loops(graph: Graph, seed: int) -> Graph:
    """``graph`` plus a self-loop on every state (every length is feasible)."""
    g = torch.Generator().manual_seed(seed)
    S = graph.num_states
    return Graph(labels=graph.labels, src=torch.cat([graph.src, torch.arange(S)]),
                 dst=torch.cat([graph.dst, torch.arange(S)]),
                 weights=torch.cat([graph.weights.float(), -torch.rand(S, generator=g)]),
                 init=graph.init.float(), final=graph.final.float())


def _batch(B: int, T: int, V: int, seed: int, lengths=None):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, V, generator=g).mul(2).log_softmax(-1)
    if lengths is None:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0], lengths[-1] = T, 1
    lengths = torch.as_tensor(lengths)
    em[torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)] = 0.0  # as score.py passes it
    coef = torch.randn(B, generator=g)
    return em.to(DEV), lengths.to(DEV), coef.to(DEV)


def _kept(ctx, b: int, t: int):
    """{state: (log-forward, emission)} of frame t's real slots."""
    act, la, ek = ctx.act[b, t].tolist(), ctx.la[b, t].tolist(), ctx.Ek[b, t].tolist()
    out = {}
    for s, l, e in zip(act, la, ek):
        if math.isfinite(l):
            assert s not in out, f"state {s} kept twice (frame {t})"
            out[s] = (l, e)
    return out


def _assert_same_lattice(ctx, ref, lengths, S: int):
    B, T, k = ref.act.shape
    assert ctx.act.shape == ref.act.shape
    for b in range(B):
        for t in range(T):
            mine, theirs = _kept(ctx, b, t), _kept(ref, b, t)
            assert set(mine) == set(theirs), (b, t, sorted(mine), sorted(theirs))
            for s, (l, e) in theirs.items():
                assert math.isclose(mine[s][0], l, rel_tol=1e-5, abs_tol=1e-5), (b, t, s)
                assert math.isclose(mine[s][1], e, rel_tol=1e-6, abs_tol=1e-6), (b, t, s)
            # empty slots point at the dummy state S with -inf
            n_real = len(mine)
            assert int((ctx.act[b, t] == S).sum()) == k - n_real
            assert bool(torch.isneginf(ctx.la[b, t][ctx.act[b, t] == S]).all())


def _grad_ref(ctx, total, coef, lengths, graph, V):
    ok = torch.isfinite(total)
    Z = torch.where(ok, total, torch.zeros_like(total))
    g = torch.where(ok, coef, torch.zeros_like(coef))
    ge = tp.pruned_backward_triton(ctx, Z, g, lengths, graph, V)
    gr = pruned_backward(ctx, Z, g, lengths, graph, V, False)[0]
    return ge, gr


REDO = (-1.0, -1.0)  # tp.FAST_LOW that redoes every frame with a max per successor


def _check(graph: Graph, k: int, B=3, T=12, V=6, seed=0, lengths=None, e2e=False, em=None,
           redo=False):
    """Kernel vs torch pruned path: totals, every frame's kept set, emission gradients;
    ``e2e``: also through ``total_score`` (dispatch + autograd) against the torch path;
    ``redo``: every frame also goes through the exact (max per successor) path."""
    graph = graph.to(DEV)
    S = graph.num_states
    em0, lengths, coef = _batch(B, T, V, seed, lengths)
    em = em0 if em is None else em.to(DEV)
    low = tp.FAST_LOW
    if redo:
        tp.FAST_LOW = REDO
    try:
        tot, ctx = tp.pruned_forward_triton(em, lengths, graph, k)
    finally:
        tp.FAST_LOW = low
    if redo:  # every frame t >= 1 of every utterance was redone
        assert tp.STATS["redone"].tolist() == (lengths - 1).tolist()
    ref, rctx = pruned_forward(em, lengths, graph, k)
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(tot), fin)
    assert torch.allclose(tot[fin], ref[fin], rtol=1e-5, atol=1e-5), (tot, ref)
    _assert_same_lattice(ctx, rctx, lengths, S)
    # backward on the kernel's lattice (= the torch lattice, checked above)
    ge, gr = _grad_ref(ctx, ref, coef, lengths, graph, V)
    assert torch.allclose(ge, gr, rtol=1e-5, atol=1e-6), float((ge - gr).abs().max())
    if e2e:
        out = []
        for mode in ("force", "0"):
            os.environ["UASR_TRITON_PRUNED"] = mode
            x = em.clone().requires_grad_(True)
            t_ = total_score(x, lengths, graph, beam=k, no_path="zero")
            (t_ * coef).sum().backward()
            out.append((t_.detach(), x.grad))
        os.environ["UASR_TRITON_PRUNED"] = "force"
        assert torch.allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-5)
        assert torch.allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)
    if k >= S:  # no pruning: the exact total (float64 log-space reference)
        ex = total_score(em.double(), lengths, graph, backend="sparse", no_path="inf")
        fin = torch.isfinite(ex)
        assert torch.equal(torch.isfinite(tot), fin)
        assert torch.allclose(tot[fin].double(), ex[fin], rtol=1e-5, atol=1e-4)
    return tot, ctx


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("k", [4, 16, "S"])
def test_random_graph_matches_torch(k):
    graph = _with_loops(random_graph(120, 6, 480, seed=3, dtype=torch.float32), seed=3)
    _check(graph, graph.num_states if k == "S" else k, T=12, seed=1, e2e=(k == 16))
    assert int(tp.STATS["redone"].sum()) == 0  # narrow scores: the one-shift path only
    if k == 4:
        _check(graph, 4, T=12, seed=1, redo=True)


@pytest.mark.parametrize("k", [4, 16, "S"])
def test_fourgram_loop_matches_torch(k):
    """The benchmark's structure (n-gram histories x loop), 4 phones: S = 64, D = 5."""
    graph = _jitter(ngram_loop_graph(4, num_phones=4), seed=5)
    _check(graph, graph.num_states if k == "S" else k, B=3, T=15, seed=2,
           lengths=[15, 10, 1], e2e=(k == "S"), redo=(k == 16))


def test_large_graph_odd_lengths():
    """S = 300, out-degree up to ~14, odd lengths; k = 16 and k = S."""
    graph = _with_loops(random_graph(300, 7, 1500, seed=11, dtype=torch.float32), seed=11)
    _check(graph, 16, B=3, T=11, V=7, seed=4, lengths=[11, 5, 3])
    _check(graph, 300, B=3, T=11, V=7, seed=4, lengths=[11, 5, 3])


def test_several_chunks_per_frame(monkeypatch):
    """Candidate chunks smaller than k*D (the GPU configs loop over chunks) and several slot
    chunks in the backward."""
    monkeypatch.setattr(tp, "FORCE_FWD", {"CH": 32, "num_warps": 4})
    monkeypatch.setattr(tp, "FORCE_BWD", {"KC": 2, "num_warps": 4})
    graph = _jitter(ngram_loop_graph(4, num_phones=4), seed=6)
    _check(graph, 13, B=3, T=9, V=5, seed=3, lengths=[9, 4, 1])
    _check(graph, 13, B=2, T=5, V=5, seed=3, lengths=[5, 4], redo=True)


def test_fused_reductions(monkeypatch):
    """The multi-operand reductions of the compiled top-k search (slow when interpreted)."""
    monkeypatch.setattr(tp, "FUSED_REDUCE", True)
    monkeypatch.setattr(tp, "FORCE_FWD", {"CH": 64, "num_warps": 4})
    graph = _jitter(ngram_loop_graph(3, num_phones=5), seed=22)  # S = 25, D = 6
    _check(graph, 9, B=3, T=6, V=6, seed=22, lengths=[6, 3, 1])


def test_k_above_reachable_states():
    """Few reachable states: slots stay empty (dummy state, -inf), k > S is clipped to S;
    one utterance has no complete path (-inf total, zero gradient)."""
    S = 60
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, 8, (20,), generator=g)  # only states 0..7 have out-arcs
    dst = torch.randint(0, 8, (20,), generator=g)
    init = torch.full((S,), -math.inf)
    init[:2] = torch.randn(2, generator=g)
    final = torch.full((S,), -math.inf)
    final[:5] = torch.randn(5, generator=g)
    graph = Graph(labels=torch.randint(0, 4, (S,), generator=g),
                  src=torch.cat([src, torch.arange(8)]), dst=torch.cat([dst, torch.arange(8)]),
                  weights=torch.randn(28, generator=g), init=init, final=final)
    for k in (16, 10 * S):  # 10 * S: clipped to S
        tot, ctx = _check(graph, k, B=3, T=10, V=4, seed=7, lengths=[10, 6, 1], e2e=(k == 16),
                          redo=(k > S))
        assert bool((ctx.act == S).any())  # empty slots exist
    # no path: a graph whose only final state is unreachable
    final2 = torch.full((S,), -math.inf)
    final2[S - 1] = 0.0
    dead = Graph(labels=graph.labels, src=graph.src, dst=graph.dst, weights=graph.weights,
                 init=graph.init, final=final2)
    tot, _ = _check(dead, 16, B=2, T=5, V=4, seed=8, lengths=[5, 2])
    assert bool(torch.isneginf(tot).all())


def test_wide_scores_redo_frames_exactly():
    """Emissions spread over hundreds of nats and a wide beam: the one-shift path would
    underflow, so frames are redone with a max per successor (and still match torch)."""
    graph = _jitter(ngram_loop_graph(4, num_phones=4), seed=21)
    g = torch.Generator().manual_seed(21)
    em = (40 * torch.randn(3, 10, 5, generator=g)).log_softmax(-1)
    em[:, :, 0] = -400.0
    _check(graph, 40, B=3, T=10, V=5, seed=21, lengths=[10, 6, 1], em=em)
    assert int(tp.STATS["redone"].sum()) > 0


def test_all_lengths_one():
    graph = _jitter(ngram_loop_graph(3, num_phones=5), seed=9)
    _check(graph, 7, B=3, T=1, V=6, seed=5, lengths=[1, 1, 1])
    _check(graph, 7, B=2, T=4, V=6, seed=5, lengths=[1, 1])


def _step_scores(graph: Graph, act, la, em_t):
    """Torch reference of one frame from a given kept set: {state: score}."""
    O = out_arcs(graph)
    w = torch.cat([graph.weights.float(), torch.tensor([-math.inf], device=graph.device)])
    scores: dict[int, list[float]] = {}
    for s, l in zip(act.tolist(), la.tolist()):
        if s >= graph.num_states or not math.isfinite(l):
            continue
        for d, a in zip(O.dst[s].tolist(), O.arc[s].tolist()):
            if d < graph.num_states and math.isfinite(float(w[a])):
                scores.setdefault(d, []).append(l + float(w[a]))
    lab = graph.labels.tolist()
    return {d: float(torch.logsumexp(torch.tensor(v, dtype=torch.float64), 0)) + float(em_t[lab[d]])
            for d, v in scores.items()}


@pytest.mark.parametrize("k", [3, 8])
def test_ties_give_a_valid_topk_lattice(k):
    """Uniform initial weights and one loop weight: many exact ties, so the kept sets may
    differ from torch.topk's choice. Every frame must still be a top-k of its own previous
    frame, the backward must match the torch backward on that lattice, and the total can
    never exceed the exact one."""
    graph = ngram_loop_graph(3, num_phones=4).to(DEV)  # S = 16, ties everywhere
    em, lengths, coef = _batch(3, 8, 5, seed=10, lengths=[8, 5, 1])
    em[1] = em[1, :1]  # utterance 1: the same emission every frame (more ties)
    tot, ctx = tp.pruned_forward_triton(em, lengths, graph, k)
    for b in range(3):
        for t in range(1, int(lengths[b])):
            sc = _step_scores(graph, ctx.act[b, t - 1], ctx.la[b, t - 1], em[b, t])
            kept = _kept(ctx, b, t)
            best = sorted(sc.values(), reverse=True)[:k]
            assert len(kept) == len(best)
            got = sorted((v[0] for v in kept.values()), reverse=True)
            assert torch.allclose(torch.tensor(got), torch.tensor(best, dtype=torch.float32),
                                  rtol=1e-5, atol=1e-5), (b, t)
            for s, (l, e) in kept.items():
                assert math.isclose(l, sc[s], rel_tol=1e-5, abs_tol=1e-5)
    exact = total_score(em.double(), lengths, graph, backend="sparse")
    assert bool((tot.double() <= exact + 1e-4).all())
    ge, gr = _grad_ref(ctx, tot, coef, lengths, graph, 5)
    assert torch.allclose(ge, gr, rtol=1e-5, atol=1e-6)
    full, _ = tp.pruned_forward_triton(em, lengths, graph, graph.num_states)
    assert torch.allclose(full.double(), exact, rtol=1e-5, atol=1e-4)


def test_graph_weight_gradients_use_the_torch_backward():
    """With graph weights requiring grad, the kernel's lattice goes through the torch backward."""
    graph = _jitter(ngram_loop_graph(3, num_phones=4), seed=12).to(DEV)
    em, lengths, coef = _batch(3, 7, 5, seed=12, lengths=[7, 4, 1])
    res = []
    for mode in ("force", "0"):
        os.environ["UASR_TRITON_PRUNED"] = mode
        g = graph.detach().requires_grad_(True)
        x = em.clone().requires_grad_(True)
        (total_score(x, lengths, g, beam=6) * coef).sum().backward()
        res.append([x.grad, g.weights.grad, g.init.grad, g.final.grad])
    os.environ["UASR_TRITON_PRUNED"] = "force"
    for a, b in zip(*res):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dispatch_switch_and_loud_fallback(monkeypatch):
    graph = _jitter(ngram_loop_graph(3, num_phones=4), seed=13).to(DEV)
    em, lengths, _ = _batch(2, 5, 5, seed=13, lengths=[5, 3])
    calls = []
    real = tp.pruned_forward_triton
    monkeypatch.setattr(tp, "pruned_forward_triton", lambda *a: calls.append(1) or real(*a))
    total_score(em, lengths, graph, beam=4)
    assert calls
    calls.clear()
    monkeypatch.setenv("UASR_TRITON_PRUNED", "0")
    assert not tp.supported(em, graph, 4)
    ref = total_score(em, lengths, graph, beam=4)
    assert not calls
    assert not tp.supported(em.double(), graph, 4)
    packed = Graph.batch([graph.to("cpu")] * 2).to(DEV)
    monkeypatch.setenv("UASR_TRITON_PRUNED", "force")
    assert not tp.supported(em, packed, 4)
    # a failing kernel outside "force": one warning, then the torch path for good
    monkeypatch.setenv("UASR_TRITON_PRUNED", "1")

    def boom(*a):
        raise RuntimeError("simulated compile failure")

    monkeypatch.setattr(tp, "pruned_forward_triton", boom)
    monkeypatch.setattr(tp, "supported", lambda *a: True)
    with pytest.warns(RuntimeWarning, match="simulated compile failure"):
        assert tp.maybe_forward(em, lengths, graph, 4) is None
    assert tp._DISABLED
    if CUDA:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = total_score(em, lengths, graph, beam=4)  # disabled: the torch path, quietly
        assert not [w for w in seen if "fused Triton" in str(w.message)]
        assert torch.allclose(got, ref)


# ---------------------------------------------------------------------------- Viterbi
def _assert_best_paths(graph: Graph, em, lengths, scores, states, arcs):
    """Each utterance with a finite score has a path of arcs that really connects its states
    and scores exactly that; the others have zero paths."""
    w, labels = graph.weights.float(), graph.labels
    for b, L in enumerate(lengths.tolist()):
        if not math.isfinite(float(scores[b])):
            assert not states[b].any() and not arcs[b].any()
            continue
        st, a = states[b, :L], arcs[b, :L - 1]
        assert torch.equal(graph.src[a], st[:-1]) and torch.equal(graph.dst[a], st[1:])
        total = graph.init[st[0]] + graph.final[st[-1]] + w[a].sum() \
            + em[b, torch.arange(L, device=em.device), labels[st]].sum()
        assert math.isclose(float(total), float(scores[b]), rel_tol=1e-5, abs_tol=1e-4), b


def _check_viterbi(graph: Graph, k: int, B=3, T=12, V=6, seed=0, lengths=None):
    """Kernel vs the torch pruned Viterbi on graphs without ties: scores and paths; k >= S:
    the exact Viterbi's scores."""
    graph = graph.to(DEV)
    em, lengths, _ = _batch(B, T, V, seed, lengths)
    scores, states, arcs = tp.pruned_viterbi_triton(em, lengths, graph, k)
    _assert_best_paths(graph, em, lengths, scores, states, arcs)
    os.environ["UASR_TRITON_PRUNED"] = "0"
    try:
        ref, (ok, ref_states, ref_arcs) = _pruned_paths(em, lengths, graph, k)
        exact = viterbi(em, lengths, graph).scores if k >= graph.num_states else None
    finally:
        os.environ["UASR_TRITON_PRUNED"] = "force"
    assert torch.isfinite(scores).tolist() == ok.tolist()
    assert torch.allclose(scores[ok], ref[ok], rtol=1e-5, atol=1e-5)
    assert (states.cpu().numpy() == ref_states).all() and (arcs.cpu().numpy() == ref_arcs).all()
    if exact is not None:
        assert torch.allclose(scores[ok], exact[ok], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [4, 16, "S"])
def test_viterbi_matches_torch(k):
    graph = _jitter(ngram_loop_graph(4, num_phones=4), seed=5)  # S = 64, D = 5
    _check_viterbi(graph, graph.num_states if k == "S" else k, B=3, T=15, seed=2,
                   lengths=[15, 10, 1])


def test_viterbi_random_graph_chunks_and_dead_ends(monkeypatch):
    """Arbitrary arcs with several candidate chunks per frame; a graph whose only final
    state is unreachable (no path: -inf, zero paths)."""
    graph = _with_loops(random_graph(120, 6, 480, seed=3, dtype=torch.float32), seed=3)
    _check_viterbi(graph, 16, T=10, seed=1)
    monkeypatch.setattr(tp, "FORCE_FWD", {"CH": 32, "num_warps": 4})
    _check_viterbi(graph, 13, T=9, seed=3, lengths=[9, 4, 1])
    final = torch.full((graph.num_states,), -math.inf)
    final[-1] = 0.0
    dead = Graph(labels=graph.labels, src=graph.src[graph.dst != graph.num_states - 1],
                 dst=graph.dst[graph.dst != graph.num_states - 1],
                 weights=graph.weights[graph.dst != graph.num_states - 1],
                 init=torch.where(torch.arange(graph.num_states) == graph.num_states - 1,
                                  -math.inf, graph.init), final=final)
    _check_viterbi(dead, 8, B=2, T=5, seed=8, lengths=[5, 2])


def test_viterbi_through_the_public_api():
    """``viterbi(..., beam=k)`` runs the kernels when forced and returns what the torch
    path returns."""
    graph = _jitter(ngram_loop_graph(3, num_phones=5), seed=9).to(DEV)
    em, lengths, _ = _batch(4, 12, 6, seed=10)
    calls = []
    real = tp.pruned_viterbi_triton
    tp.pruned_viterbi_triton = lambda *a: calls.append(1) or real(*a)
    try:
        out = viterbi(em, lengths, graph, beam=6)
    finally:
        tp.pruned_viterbi_triton = real
    os.environ["UASR_TRITON_PRUNED"] = "0"
    ref = viterbi(em, lengths, graph, beam=6)
    os.environ["UASR_TRITON_PRUNED"] = "force"
    assert calls and out.labels == ref.labels
    assert torch.allclose(out.scores, ref.scores, rtol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(out.states, ref.states))


@pytest.mark.skipif(not CUDA, reason="benchmark-size check only when compiled")
def test_benchmark_size_viterbi_on_cuda():
    """The benchmark's 4-gram x loop at k = 256 (jittered): tuned configs; the same scores
    as the torch pruned Viterbi and paths that attain them."""
    graph = _jitter(ngram_loop_graph(4), seed=17, scale=0.1).to(DEV)
    em, lengths, _ = _batch(4, 60, 41, seed=17, lengths=[60, 33, 7, 1])
    scores, states, arcs = tp.pruned_viterbi_triton(em, lengths, graph, 256)
    os.environ["UASR_TRITON_PRUNED"] = "0"
    ref, _ = _pruned_paths(em, lengths, graph, 256)
    os.environ["UASR_TRITON_PRUNED"] = "force"
    assert torch.allclose(scores, ref, rtol=1e-5, atol=1e-4)
    _assert_best_paths(graph, em, lengths, scores, states, arcs)


@pytest.mark.skipif(not CUDA, reason="launch configs only differ when compiled")
def test_every_launch_config_on_cuda(monkeypatch):
    graph = _jitter(ngram_loop_graph(4, num_phones=6), seed=14)  # S = 216, D = 7
    k = 40
    NP = tp._next_pow2(k * 7, 16)
    for cfg in tp.fwd_configs(NP):
        monkeypatch.setattr(tp, "FORCE_FWD", cfg)
        _check(graph, k, B=4, T=20, V=7, seed=15)
        _check(graph, k, B=4, T=20, V=7, seed=18, redo=True)  # the exact path, program 0
    monkeypatch.setattr(tp, "FORCE_FWD", None)
    for cfg in tp.bwd_configs(tp._next_pow2(k, 16), tp._next_pow2(7, 2)):
        monkeypatch.setattr(tp, "FORCE_BWD", cfg)
        _check(graph, k, B=4, T=20, V=7, seed=16)


@pytest.mark.skipif(not CUDA, reason="benchmark-size check only when compiled")
@pytest.mark.parametrize("split", [None, 4])
def test_benchmark_size_on_cuda(monkeypatch, split):
    """The benchmark's 4-gram x loop (S = 64000, D = 41) at k = 256, jittered (no ties);
    tuned configs, then 4 programs per utterance in both passes."""
    if split:
        monkeypatch.setattr(tp, "FORCE_FWD", {"CH": 2048, "num_warps": 32, "P": split})
        monkeypatch.setattr(tp, "FORCE_BWD", {"KC": 64, "num_warps": 8, "P": split})
    graph = _jitter(ngram_loop_graph(4), seed=17, scale=0.1).to(DEV)
    em, lengths, coef = _batch(4, 60, 41, seed=17, lengths=[60, 33, 7, 1])
    tot, ctx = tp.pruned_forward_triton(em, lengths, graph, 256)
    ref, rctx = pruned_forward(em, lengths, graph, 256)
    assert torch.allclose(tot, ref, rtol=1e-5, atol=1e-4)
    same = (ctx.act.sort(-1).values == rctx.act.sort(-1).values).float().mean()
    assert float(same) > 0.999  # the kept sets (near-ties at the boundary may swap a state)
    ge, gr = _grad_ref(ctx, ref, coef, lengths, graph, 41)
    assert torch.allclose(ge, gr, rtol=1e-4, atol=1e-5)
