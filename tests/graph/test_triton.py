"""The fused Triton kernels agree with the torch backends (values and all gradients).

Without CUDA the kernels run on CPU tensors under Triton's interpreter: ``TRITON_INTERPRET``
must be set before the kernels are decorated, so it is set here at import (only when no GPU
is visible; nothing else in the test suite uses triton) and the kernel module is reloaded if
something imported it earlier. With CUDA the same tests run on the GPU, compiled.
Skipped only when the ``triton`` package itself is missing.
"""

from __future__ import annotations

import importlib
import math
import os
import pathlib
import sys

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

import uasr.graph.triton_kernels as tk  # noqa: E402

if not CUDA and not tk._interpreting():  # pragma: no cover - only if imported earlier
    tk = importlib.reload(tk)

from uasr.graph import Graph, compose, loop, table_acceptor, total_score  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from benchmarks.graphs import ngram_loop_graph  # noqa: E402
from tests.graph.helpers import random_graph  # noqa: E402

DEV = "cuda" if CUDA else "cpu"


def _batch(B: int, T: int, V: int, seed: int, pad_nan: bool = True):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, V, generator=g).mul(2).log_softmax(-1)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0], lengths[-1] = T, 1
    if pad_nan:  # padding frames must be ignored, whatever they hold
        em[torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)] = math.nan
    coef = torch.randn(B, generator=g)  # a random upstream gradient per utterance
    return em.to(DEV), lengths.to(DEV), coef.to(DEV)


def _run(graph: Graph, em, lengths, coef, backend: str, graph_grad: bool = True):
    g = graph.detach().to(DEV).requires_grad_(graph_grad)
    x = em.clone().requires_grad_(True)
    tot = total_score(x, lengths, g, backend=backend)
    (tot * coef).sum().backward()
    out = {"total": tot.detach(), "em": x.grad}
    if graph_grad:
        out.update(weights=g.weights.grad, init=g.init.grad, final=g.final.grad)
    return out


def _compare(graph: Graph, ref_backend: str, B=3, T=7, V=6, seed=0, force_block=False,
             monkeypatch=None, graph_grad: bool = True):
    em, lengths, coef = _batch(B, T, V, seed)
    ref = _run(graph, em, lengths, coef, ref_backend, graph_grad)
    if force_block:
        monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    out = _run(graph, em, lengths, coef, "triton", graph_grad)
    for name, r in ref.items():
        o = out[name]
        assert torch.isfinite(o).all(), name
        err = float((o - r).norm() / r.norm().clamp_min(1e-20))
        assert err < 2e-5, f"{name}: relative error {err:.2e}"


def _dense_random_graph(seed: int) -> Graph:
    """S in 3..11 states over 6 labels (so states share labels), every length feasible."""
    g = torch.Generator().manual_seed(100 + seed)
    S = int(torch.randint(3, 12, (1,), generator=g))
    graph = random_graph(S, 6, 4 * S, seed=seed, dtype=torch.float32)
    graph.init[0] = 0.0  # at least one start and one end, so every utterance has a path
    graph.final[-1] = 0.0
    graph = Graph(labels=graph.labels, src=torch.cat([graph.src, torch.arange(S)]),
                  dst=torch.cat([graph.dst, torch.arange(S)]),
                  weights=torch.cat([graph.weights, torch.zeros(S)]), init=graph.init,
                  final=graph.final)  # self-loops everywhere: every length is feasible
    assert graph.labels.unique().numel() < S or S <= 6
    return graph


@pytest.mark.parametrize("graph_grad", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_random_graphs(seed, graph_grad):
    """Without graph gradients the backward writes the emission gradient per label itself
    (atomic adds where states share a label)."""
    _compare(_dense_random_graph(seed), "dense", seed=seed, graph_grad=graph_grad)


def test_dense_tuning_runs_leave_no_trace(monkeypatch):
    """The per-label emission gradient is accumulated with atomic adds: a tuning run of every
    candidate config must start from zero each time."""
    def tune_all(run, key, cands, work, on_cuda):
        for _ in range(3):
            out = run(cands[0])
        return out

    monkeypatch.setattr(tk, "_launch", tune_all)
    graph = _dense_random_graph(1)
    assert not tk._weights(graph.to(DEV), "dense").unique_labels
    _compare(graph, "dense", seed=5, graph_grad=False)


def test_dense_bigram_loop():
    _compare(ngram_loop_graph(2, num_phones=5), "dense", B=4, T=9, V=6, seed=3)


def test_block_trigram_loop(monkeypatch):
    graph = ngram_loop_graph(3, num_phones=4)  # 16 states, 4 blocks of 4 x 4 + loops
    assert tk._kind(graph) == "dense"  # small; force the block kernel below
    _compare(graph, "block", T=6, V=5, seed=4, force_block=True, monkeypatch=monkeypatch)


@pytest.mark.parametrize("graph_grad", [True, False])
@pytest.mark.parametrize("cfg", [{"KB": 2, "P": 1}, {"KB": 2, "P": 2}, {"KB": 1, "P": 0},
                                 {"KB": 4, "P": 0}])
def test_block_splits_and_ring_buffer(monkeypatch, cfg, graph_grad):
    """Every way of cutting an utterance's block groups over programs: one program looping
    over several groups, P = 2 programs taking alternate groups (one with more than the
    other), one program per group (weights kept in registers), uneven last group. Without
    arc gradients the backward keeps only two frames of its recursion buffer."""
    monkeypatch.setattr(tk, "FORCE_CONFIG", {**cfg, "num_warps": 4})
    _compare(ngram_loop_graph(3, num_phones=5), "block", T=5, V=6, seed=12 + cfg["KB"],
             force_block=True, monkeypatch=monkeypatch, graph_grad=graph_grad)


@pytest.mark.parametrize("graph_grad", [True, False])
def test_tuning_runs_leave_no_trace(monkeypatch, graph_grad):
    """Tuning runs every candidate split in the same call before the chosen one: partial
    maxima / sums that an earlier candidate wrote (more programs) must not leak into the
    result, and the backward's two-frame ring (no arc gradients) must be primed again for
    each run. The CUDA tuner is emulated: every config in turn, the last one kept."""
    cfgs = [{"KB": 1, "P": 0, "num_warps": 4}, {"KB": 2, "P": 2, "num_warps": 4},
            {"KB": 4, "P": 1, "num_warps": 4}]

    def tune_all(run, key, cands, work, on_cuda):
        for cfg in cfgs:
            out = run(cfg)
        return out

    monkeypatch.setattr(tk, "_launch", tune_all)
    _compare(ngram_loop_graph(3, num_phones=5), "block", T=5, V=6, seed=21, force_block=True,
             monkeypatch=monkeypatch, graph_grad=graph_grad)


def test_dense_without_graph_grad():
    _compare(ngram_loop_graph(2, num_phones=5), "dense", T=6, seed=13, graph_grad=False)


def _trigram_with_silence(C: int = 3) -> Graph:
    """Trigram table with <s> histories x loop with silence (label 0): overlapping in-sets,
    sources in several blocks, states nobody enters except at the start."""
    logp = torch.randn(C + 1, C + 1, C, generator=torch.Generator().manual_seed(0)).log_softmax(-1)
    acc = table_acceptor(logp)
    acc.label += 1  # labels 1..C; 0 is the silence
    return compose(acc, loop(0.4, silence=0, silence_prob=0.2))


def _random_graph_with_loops() -> Graph:
    """Arbitrary arcs plus a self-loop on every state and three parallel arcs (V = 5)."""
    graph = random_graph(9, 5, 30, seed=7, dtype=torch.float32)
    S = graph.num_states
    return Graph(labels=graph.labels, src=torch.cat([graph.src, torch.arange(S), graph.src[:3]]),
                 dst=torch.cat([graph.dst, torch.arange(S), graph.dst[:3]]),
                 weights=torch.cat([graph.weights, torch.full((S,), -0.5), torch.zeros(3)]),
                 init=graph.init, final=graph.final)


def test_block_irregular_graph(monkeypatch):
    _compare(_trigram_with_silence(), "block", T=6, V=4, seed=5, force_block=True,
             monkeypatch=monkeypatch)


def test_block_random_graph(monkeypatch):
    """Arbitrary arcs (parallel arcs, self-loops, unreachable states) through the block path."""
    _compare(_random_graph_with_loops(), "dense", T=6, V=5, seed=6, force_block=True,
             monkeypatch=monkeypatch)


def test_underflow_falls_back_to_log_space():
    """Emissions far below float32's range: the kernels return -inf, score.py redoes it."""
    graph = ngram_loop_graph(2, num_phones=3)
    em, lengths, coef = _batch(2, 5, 4, seed=8, pad_nan=False)
    em = em * 0 - 200.0  # every frame scores -200 -> exp underflows
    em[0] = em[0] * 0  # utterance 0 is fine
    ref = _run(graph, em, lengths, coef, "dense")
    out = _run(graph, em, lengths, coef, "triton")
    for name in ref:
        assert torch.allclose(out[name], ref[name], rtol=1e-5, atol=1e-6), name


def test_supports_is_honest():
    graph = ngram_loop_graph(2, num_phones=3).to(DEV)
    em = torch.zeros(1, 2, 4, device=DEV)
    assert tk.triton_supports(graph, em)
    assert not tk.triton_supports(graph, em.double())
    packed = Graph.batch([ngram_loop_graph(2, num_phones=3)] * 2).to(DEV)
    assert not tk.triton_supports(packed, em)
    if CUDA:
        assert not tk.triton_supports(graph.to("cpu"), em.cpu())
    # a block graph with side arcs (loop stay copies) has no kernel path: the torch block one
    bounded = compose(table_acceptor(torch.zeros(13, 13, 12)), loop(0.2, max_stay=1)).to(DEV)
    assert bounded.num_states > tk.DENSE_MAX_STATES
    assert not tk.triton_supports(bounded, torch.zeros(1, 2, 13, device=DEV))


@pytest.mark.skipif(not CUDA, reason="auto dispatch to triton happens for CUDA tensors")
def test_auto_uses_triton_on_cuda(monkeypatch):
    calls = []
    real = tk.triton_forward
    monkeypatch.setattr(tk, "triton_forward", lambda *a: calls.append(1) or real(*a))
    graph = ngram_loop_graph(2, num_phones=5).to(DEV)
    em, lengths, _ = _batch(2, 6, 6, seed=9, pad_nan=False)
    total_score(em, lengths, graph)
    assert calls


@pytest.mark.skipif(not CUDA, reason="launch configs only differ when compiled")
def test_every_launch_config(monkeypatch):
    """The benchmark may pick any candidate config: each one must be right."""
    bigram = ngram_loop_graph(2, num_phones=5)
    for cfg in tk.dense_configs(tk._next_pow2(bigram.num_states)):
        monkeypatch.setattr(tk, "FORCE_CONFIG", cfg)
        _compare(bigram, "dense", B=4, T=9, V=6, seed=10)
    trigram = ngram_loop_graph(3, num_phones=5)
    monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    p = tk._block_plan(trigram).fwd
    for cfg in tk.block_configs(*tk._tile(p), p.K):
        monkeypatch.setattr(tk, "FORCE_CONFIG", cfg)
        _compare(trigram, "block", B=4, T=9, V=6, seed=11)


@pytest.mark.skipif(not CUDA, reason="programs run concurrently (barriers) only when compiled")
def test_benchmark_trigram_every_split_on_cuda(monkeypatch):
    """The benchmark's trigram x loop (1,600 states in 40 blocks): every candidate split of
    an utterance over programs, with the barrier between frames, against the torch block
    backend."""
    trigram = ngram_loop_graph(3)
    p = tk._block_plan(trigram.to(DEV)).fwd
    for cfg in tk.block_configs(*tk._tile(p), p.K):
        monkeypatch.setattr(tk, "FORCE_CONFIG", cfg)
        _compare(trigram, "block", B=6, T=40, V=41, seed=16)


@pytest.mark.parametrize("kind", ["dense", "block"])
def test_backward_by_label(monkeypatch, kind):
    """``num_labels=V`` returns gamma summed per label (what score.py builds from gamma)."""
    graph = ngram_loop_graph(3, num_phones=4).to(DEV).requires_grad_(True)
    if kind == "block":
        monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    em, lengths, coef = _batch(3, 6, 5, seed=14, pad_nan=False)
    for t in range(em.shape[1]):
        em[:, t][t >= lengths] = 0.0  # the padding that score.py zeroes
    outs = []
    for num_labels in (None, 5):
        total, ctx, trans = tk.triton_forward(em, lengths, graph)
        outs.append(tk.triton_backward(ctx, coef, trans, True, num_labels=num_labels))
    gam = outs[0][0]
    by_label = gam.new_zeros(*gam.shape[:2], 5).index_add_(2, graph.labels, gam)
    assert torch.allclose(outs[1][0], by_label, rtol=1e-5, atol=1e-7)
    for a, b in zip(outs[0][1:], outs[1][1:]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_new_weights_are_picked_up():
    """Changing the graph's weights (in place or by a new tensor) changes the result."""
    graph = ngram_loop_graph(2, num_phones=4).to(DEV)
    em, lengths, _ = _batch(2, 5, 5, seed=15, pad_nan=False)
    t0 = total_score(em, lengths, graph, backend="triton")
    with torch.no_grad():
        graph.weights.add_(0.1)  # in place
    t1 = total_score(em, lengths, graph, backend="triton")
    graph.weights = graph.weights.detach() + 0.1  # a new tensor
    t2 = total_score(em, lengths, graph, backend="triton")
    ref = total_score(em, lengths, graph, backend="dense")
    assert torch.allclose(t2, ref, rtol=1e-5)
    assert not torch.allclose(t0, t1) and not torch.allclose(t1, t2)


# ------------------------------------------------------------------------------- Viterbi
def _torch_tropical(graph: Graph, em, lengths):
    """The torch path's (delta [B, T, S], emission scores [B, T, S]) on padding-masked
    emissions."""
    from uasr.graph import forward_backward as fb
    from uasr.graph.score import _mask_padding
    layout = fb.LogLayout(graph, lengths)
    E = layout.gather_emissions(_mask_padding(em, lengths), graph.labels)
    delta, _ = fb.log_forward(E, lengths, graph, layout, semiring="tropical")
    return delta, E


def _check_viterbi(graph: Graph, em, lengths):
    """The scores at each last frame equal the torch path's, and every back-pointer of a
    reachable state is an arc into it that attains its score (loop graphs have exact ties:
    two paths through states of the same label, so the arc itself may differ)."""
    last, bp = tk.triton_viterbi(em, lengths, graph)
    delta, E = _torch_tropical(graph, em, lengths)
    ref_last = delta[:, -1]
    assert torch.allclose(last, ref_last, rtol=1e-6, atol=1e-5)
    assert torch.equal(torch.isfinite(last), torch.isfinite(ref_last))
    for b, L in enumerate(lengths.tolist()):
        assert (bp[b, L:] == -1).all() and (bp[b, 0] == -1).all()
        arc = bp[b, 1:L].long()
        reach = torch.isfinite(delta[b, 1:L])
        assert torch.equal(arc >= 0, reach), b
        t, st = reach.nonzero(as_tuple=True)
        a = arc[t, st]
        assert torch.equal(graph.dst[a], st)
        via = delta[b, t, graph.src[a]] + graph.weights[a].to(delta.dtype) + E[b, t + 1, st]
        assert torch.allclose(via, delta[b, t + 1, st], rtol=1e-6, atol=1e-5), b


def _path_score(graph: Graph, em, b: int, states) -> float:
    """Score of one utterance's state path (the best of parallel arcs between two states)."""
    s = states.tolist()
    score = float(graph.init[s[0]] + graph.final[s[-1]])
    score += sum(float(em[b, t, graph.labels[q]]) for t, q in enumerate(s))
    for p, q in zip(s, s[1:]):
        score += float(graph.weights[(graph.src == p) & (graph.dst == q)].max())
    return score


@pytest.mark.parametrize("which", ["random", "bigram"])
def test_viterbi_matches_torch(which):
    graph = (_dense_random_graph(2) if which == "random" else ngram_loop_graph(2, num_phones=5))
    em, lengths, _ = _batch(4, 9, 6, seed=30)  # NaN padding
    _check_viterbi(graph.to(DEV), em, lengths)


@pytest.mark.parametrize("cfg", [{"KB": 2, "P": 1}, {"KB": 2, "P": 2}, {"KB": 1, "P": 0},
                                 {"KB": 4, "P": 0}])
def test_block_viterbi_splits(monkeypatch, cfg):
    """The block kernel's max-product recursion under every way of cutting an utterance's
    groups over programs (its two-frame ring shared through the barrier)."""
    monkeypatch.setattr(tk, "FORCE_CONFIG", {**cfg, "num_warps": 4})
    monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    em, lengths, _ = _batch(4, 7, 6, seed=33 + cfg["KB"])
    _check_viterbi(ngram_loop_graph(3, num_phones=5).to(DEV), em, lengths)


def test_block_viterbi_irregular_graphs(monkeypatch):
    """Parallel arcs, self-loops inside and outside blocks, unreachable states; and the
    trigram with <s> histories x loop with silence."""
    monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    em, lengths, _ = _batch(3, 8, 5, seed=34)
    _check_viterbi(_random_graph_with_loops().to(DEV), em, lengths)
    em, lengths, _ = _batch(3, 8, 4, seed=35)
    _check_viterbi(_trigram_with_silence().to(DEV), em, lengths)


@pytest.mark.skipif(not CUDA, reason="programs run concurrently (barriers) only when compiled")
def test_benchmark_trigram_viterbi_every_config_on_cuda(monkeypatch):
    trigram = ngram_loop_graph(3).to(DEV)
    p = tk._block_plan(trigram).fwd
    em, lengths, _ = _batch(6, 40, 41, seed=36)
    for cfg in tk.block_configs(*tk._tile(p), p.K):
        monkeypatch.setattr(tk, "FORCE_CONFIG", cfg)
        _check_viterbi(trigram, em, lengths)


@pytest.mark.parametrize("order", [2, 3])
def test_viterbi_through_the_public_api(monkeypatch, order):
    """``viterbi()`` gives the same paths, tokens and scores with and without the kernel
    (the trigram through the block kernel)."""
    from uasr.graph import viterbi
    graph = ngram_loop_graph(order, num_phones=5).to(DEV)
    if order == 3:
        monkeypatch.setattr(tk, "_kind", lambda graph: "block")
    em, lengths, _ = _batch(5, 12, 6, seed=31)
    monkeypatch.setenv(tk.VITERBI_ENV, "0")
    ref = viterbi(em, lengths, graph)
    monkeypatch.setenv(tk.VITERBI_ENV, "force")
    calls = []
    real = tk.triton_viterbi
    monkeypatch.setattr(tk, "triton_viterbi", lambda *a: calls.append(1) or real(*a))
    out = viterbi(em, lengths, graph)
    assert calls
    assert torch.allclose(out.scores, ref.scores, rtol=1e-6)
    if order == 2:  # every state has its own label: no ties, the same paths
        assert out.labels == ref.labels
        for a, b in zip(out.states, ref.states):
            assert torch.equal(a, b)
    for b, states in enumerate(out.states):  # a path that attains the best score
        assert _path_score(graph, em, b, states) == pytest.approx(float(out.scores[b]), abs=1e-4)


def test_trace_back_matches_the_host_one():
    """The trace-back kernel against score.py's numpy one on the same back-pointers, with an
    utterance of length 1 and one without any path (a frame where every label is -inf)."""
    from uasr.graph import forward_backward as fb
    from uasr.graph.score import _trace_back
    graph = ngram_loop_graph(2, num_phones=5).to(DEV)
    em, lengths, _ = _batch(4, 10, 6, seed=37)
    em[1, 0] = -math.inf
    last, bp = tk.triton_viterbi(em, lengths, graph)
    last = last + graph.final
    scores = last.max(1).values
    assert not torch.isfinite(scores[1]) and torch.isfinite(scores[0])
    states, arcs = tk.triton_trace_back(bp, last, scores, lengths, graph)
    ok, ref_states, ref_arcs = _trace_back(bp, last, scores, lengths, graph,
                                           fb.LogLayout(graph, lengths))
    assert ok.tolist() == [True, False, True, True]
    assert (states.cpu().numpy() == ref_states).all() and (arcs.cpu().numpy() == ref_arcs).all()


def test_viterbi_parallel_arcs():
    """Of parallel arcs the better one is the back-pointer; among equal ones the last."""
    graph = Graph(labels=torch.tensor([0, 1]), src=torch.tensor([0, 0, 0, 0, 1]),
                  dst=torch.tensor([1, 1, 1, 0, 1]),
                  weights=torch.tensor([-1.0, -0.5, -0.5, -2.0, -0.1]),
                  init=torch.tensor([0.0, -math.inf]), final=torch.tensor([-math.inf, 0.0]))
    em = torch.zeros(1, 2, 2, device=DEV)
    _, bp = tk.triton_viterbi(em, torch.tensor([2], device=DEV), graph.to(DEV))
    assert bp[0, 1].tolist() == [3, 2]  # state 0 by its self-loop; into 1: arcs 1, 2 tie
    graph.init[0] = -math.inf  # nothing starts: every state unreachable
    _, bp = tk.triton_viterbi(em, torch.tensor([2], device=DEV), graph.to(DEV))
    assert bp[0, 1].tolist() == [-1, -1]


def test_in_place_change_after_forward_is_refused():
    """The fused path keeps the caller's emissions (no copy): autograd must refuse a backward
    once they were modified in place."""
    graph = ngram_loop_graph(2, num_phones=5).to(DEV)
    em, lengths, _ = _batch(2, 6, 6, seed=32, pad_nan=False)
    x = em.clone().requires_grad_(True)
    y = x * 1.0
    tot = total_score(y, lengths, graph, backend="triton")
    with torch.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tot.sum().backward()
