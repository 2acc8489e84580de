"""Backends agree on LM-prior graphs; padding is ignored; underflow falls back exactly."""

import math

import pytest
import torch

from uasr.graph import Graph, ctc, linear_graph, loop, one_to_one, total_score
from uasr.graph.transitions import BlockLayout, choose_backend

import sys, pathlib  # noqa: E401  (benchmarks/ is not a package on sys.path by default)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from benchmarks.graphs import ngram_loop_graph  # noqa: E402


def _inputs(B, T, V, seed, device, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, V, generator=g, dtype=dtype).log_softmax(-1).to(device)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    return em, lengths.to(device)


@pytest.mark.parametrize("order", [2, 3])
def test_dense_block_sparse_agree_on_ngram_loop(order, device):
    graph = ngram_loop_graph(order, num_phones=6).to(device)
    em, lengths = _inputs(4, 30, 7, seed=order, device=device)
    em.requires_grad_(True)
    results = {}
    for backend in ("dense", "block", "sparse"):
        tot = total_score(em, lengths, graph, backend=backend)
        (grad,) = torch.autograd.grad(tot.sum(), em)
        results[backend] = (tot, grad)
    ref_tot, ref_grad = results["sparse"]
    for backend in ("dense", "block"):
        tot, grad = results[backend]
        assert torch.allclose(tot, ref_tot, rtol=1e-5), backend
        assert torch.allclose(grad, ref_grad, atol=1e-5), backend


def bounded_loop_trigram(C: int, silence: bool = False) -> Graph:
    """Trigram x loop(max_stay=1): every label state has a stay copy fed by it alone."""
    from uasr.graph.acceptor import table_acceptor
    from uasr.graph.topology import compose
    g = torch.Generator().manual_seed(C)
    logp = torch.randn((C + 1, C + 1, C), generator=g, dtype=torch.float64).log_softmax(-1)
    topo = loop(0.3, max_stay=1, silence=C if silence else None, silence_prob=0.2)
    return compose(table_acceptor(logp), topo)


@pytest.mark.parametrize("silence", [False, True])
def test_backends_agree_on_bounded_loop_with_weight_gradients(silence, device):
    """Side arcs (the stay copies) in the block layout: totals, emission and arc-weight
    gradients as the dense and sparse backends."""
    graph = bounded_loop_trigram(5, silence)
    assert BlockLayout(graph).num_side == 5 * 6  # one stay copy per (history, label) state
    em, lengths = _inputs(3, 9, 6, seed=2, device=device, dtype=torch.float64)
    em.requires_grad_(True)
    results = {}
    for backend in ("dense", "block", "sparse"):
        g = graph.to(device)
        g.weights.requires_grad_(True)
        tot = total_score(em, lengths, g, backend=backend)
        results[backend] = (tot, *torch.autograd.grad(tot.sum(), [em, g.weights]))
    for backend in ("dense", "block"):
        for got, want in zip(results[backend], results["sparse"]):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_block_layout_of_trigram_is_exact_blocks():
    """Fully expanded trigram x loop: C blocks of C x C, no padding, self-loops diagonal."""
    C = 5
    L = BlockLayout(ngram_loop_graph(3, num_phones=C))
    assert (L.K, L.I, L.O) == (C, C, C)
    assert L.padded == C ** 3


def test_auto_backend_choice():
    assert choose_backend(ngram_loop_graph(2, num_phones=10)) == "dense"
    assert choose_backend(ngram_loop_graph(3, num_phones=30)) == "block"
    assert choose_backend(Graph.batch([linear_graph([1, 2], ctc())] * 2)) == "sparse"


@pytest.mark.parametrize("backend", ["dense", "block", "sparse"])
def test_padding_frames_change_nothing(backend, device):
    graph = ngram_loop_graph(2, num_phones=4).to(device)
    em, _ = _inputs(3, 8, 5, seed=1, device=device)
    lengths = torch.tensor([8, 5, 2], device=device)
    padded = em.clone()
    for b, n in enumerate(lengths.tolist()):
        padded[b, n:] = float("nan")  # garbage in the padding must not leak
    padded.requires_grad_(True)
    tot = total_score(padded, lengths, graph, backend=backend)
    (grad,) = torch.autograd.grad(tot.sum(), padded)
    ref = torch.stack([total_score(em[b:b + 1, :n], lengths[b:b + 1].clamp(max=n), graph,
                                   backend=backend)[0]
                       for b, n in enumerate(lengths.tolist())])
    assert torch.allclose(tot, ref, rtol=1e-5)
    assert not torch.isnan(grad).any()
    for b, n in enumerate(lengths.tolist()):
        assert bool((grad[b, n:] == 0).all())


@pytest.mark.parametrize("backend", ["dense", "block"])
def test_underflow_falls_back_to_log_space(backend, device):
    """Emissions 200 nats apart underflow float32 probabilities; the result stays exact."""
    graph = linear_graph([1, 2, 1], one_to_one()).to(device)
    em = torch.zeros(2, 3, 3, device=device)
    em[:, :, 0] = 200.0  # the best label is never on the graph
    em[1, 1, 2] = -300.0
    em.requires_grad_(True)
    tot = total_score(em, torch.tensor([3, 3], device=device), graph, backend=backend)
    assert torch.allclose(tot, torch.tensor([0.0, -300.0], device=device))
    (grad,) = torch.autograd.grad(tot.sum(), em)
    assert torch.allclose(grad.sum((1, 2)), torch.tensor([3.0, 3.0], device=device))


def test_float64_option_matches_float32(device):
    graph = ngram_loop_graph(2, num_phones=5).to(device)
    em, lengths = _inputs(3, 50, 6, seed=2, device=device)
    a = total_score(em, lengths, graph)
    b = total_score(em, lengths, graph, dtype=torch.float64)
    assert b.dtype == torch.float32
    assert torch.allclose(a, b, rtol=1e-5)


def test_loop_topology_long_utterance_is_finite(device):
    graph = ngram_loop_graph(2, num_phones=8).to(device)
    em, _ = _inputs(2, 2000, 9, seed=3, device=device)
    tot = total_score(em, torch.tensor([2000, 1500], device=device), graph)
    assert torch.isfinite(tot).all()
    assert math.isclose(float(tot[0]), float(total_score(em[:1], torch.tensor([2000], device=device),
                                                         graph, backend="sparse")[0]), rel_tol=1e-5)


@pytest.mark.parametrize("backend", ["dense", "block", "sparse"])
def test_emissions_longer_than_every_length(backend, device):
    """T beyond the longest utterance (batches padded to a fixed size) is fine."""
    graph = ngram_loop_graph(3, num_phones=4).to(device)
    em, _ = _inputs(3, 12, 5, seed=4, device=device)
    lengths = torch.tensor([7, 5, 2], device=device)
    em.requires_grad_(True)
    tot = total_score(em, lengths, graph, backend=backend)
    (grad,) = torch.autograd.grad(tot.sum(), em)
    ref = total_score(em[:, :7].detach(), lengths, graph, backend="sparse")
    assert torch.allclose(tot, ref, rtol=1e-5)
    assert bool((grad[:, 7:] == 0).all())


def _path_score(E, graph, states, arcs):
    """Score of a back-traced path: init + emissions + arc weights."""
    s = float(graph.init[states[0]]) + sum(float(E[t, s]) for t, s in enumerate(states))
    return s + sum(float(graph.weights[a]) for a in arcs)


@pytest.mark.parametrize("graph_fn", [lambda: ngram_loop_graph(3, num_phones=6),
                                      lambda: ngram_loop_graph(2, num_phones=5, stay=0.3),
                                      lambda: one_to_one_trigram(5),
                                      lambda: bounded_loop_trigram(4, silence=True)])
def test_block_viterbi_matches_arc_list_viterbi(graph_fn, device):
    """The block-layout tropical forward gives the in-arc one's scores, and its back-pointers
    trace paths with exactly those scores."""
    from uasr.graph import forward_backward as fb
    from uasr.graph.transitions import block_layout
    graph = graph_fn().to(device)
    em, lengths = _inputs(5, 12, int(graph.labels.max()) + 1, seed=3, device=device,
                          dtype=torch.float64)
    layout = fb.LogLayout(graph, lengths)
    E = layout.gather_emissions(em, graph.labels)
    ref, _ = fb.log_forward(E, lengths, graph, layout, semiring="tropical")
    delta, bp = fb.block_tropical_forward(E, lengths, graph, block_layout(graph))
    torch.testing.assert_close(delta, ref, rtol=1e-12, atol=1e-12)
    src = graph.src.tolist()
    for b in range(5):
        n = int(lengths[b])
        s = int(delta[b, n - 1].argmax())
        states, arcs = [s], []
        for t in range(n - 1, 0, -1):
            a = int(bp[b, t, s])
            arcs.append(a)
            s = src[a]
            states.append(s)
        states, arcs = states[::-1], arcs[::-1]
        assert all(int(graph.dst[a]) == states[i + 1] for i, a in enumerate(arcs))
        assert math.isclose(_path_score(E[b].cpu(), graph.to("cpu"), states, arcs),
                            float(delta[b, n - 1].max()), rel_tol=1e-12)


def one_to_one_trigram(C: int) -> Graph:
    from uasr.graph.acceptor import table_acceptor
    from uasr.graph.topology import compose
    g = torch.Generator().manual_seed(C)
    logp = torch.randn((C + 1, C + 1, C), generator=g, dtype=torch.float64).log_softmax(-1)
    return compose(table_acceptor(logp), one_to_one())


def test_viterbi_uses_blocks_on_large_graphs(device):
    """viterbi() on a graph that takes the block path: same scores as the arc-list path."""
    from uasr.graph import forward_backward as fb
    from uasr.graph import viterbi
    graph = ngram_loop_graph(3, num_phones=24).to(device)
    assert choose_backend(graph) == "block"
    em, lengths = _inputs(3, 20, 25, seed=5, device=device, dtype=torch.float64)
    res = viterbi(em, lengths, graph)
    layout = fb.LogLayout(graph, lengths)
    ref, _ = fb.log_forward(layout.gather_emissions(em, graph.labels), lengths, graph, layout,
                            semiring="tropical")
    best = (ref[torch.arange(3), lengths - 1] + graph.final).max(1).values
    torch.testing.assert_close(res.scores, best, rtol=1e-12, atol=1e-12)
