"""total_score and viterbi against enumeration of every state path on random tiny graphs."""

import math

import pytest
import torch

from uasr.graph import total_score, viterbi

from .helpers import brute_best, brute_total, path_scores, random_graph

BACKENDS = ["dense", "block", "sparse"]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("backend", BACKENDS)
def test_total_score_matches_enumeration(seed, backend, device):
    S, V, T = 4, 3, 4
    graph = random_graph(S, V, A=9, seed=seed)
    g = torch.Generator().manual_seed(100 + seed)
    em = torch.randn(3, T, V, generator=g, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([T, 1, 3])
    expected = [brute_total(em[b], int(lengths[b]), graph) for b in range(3)]
    got = total_score(em.to(device), lengths.to(device), graph.to(device), backend=backend)
    assert torch.allclose(got.cpu(), torch.tensor(expected, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_float32_matches_enumeration(seed, device):
    graph = random_graph(5, 4, A=12, seed=seed, dtype=torch.float32)
    em = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)
    lengths = torch.tensor([4, 2])
    expected = torch.tensor([brute_total(em[b], int(lengths[b]), graph) for b in range(2)],
                            dtype=torch.float64)
    for backend in BACKENDS:
        got = total_score(em.to(device), lengths.to(device), graph.to(device), backend=backend)
        assert got.dtype == torch.float32
        assert torch.allclose(got.cpu().double(), expected, rtol=1e-5, atol=1e-5), backend


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_matches_enumeration(seed, device):
    S, V, T = 4, 3, 4
    graph = random_graph(S, V, A=9, seed=seed)
    em = torch.randn(2, T, V, generator=torch.Generator().manual_seed(7 + seed),
                     dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([T, 2])
    res = viterbi(em.to(device), lengths.to(device), graph.to(device))
    for b in range(2):
        best, path = brute_best(em[b], int(lengths[b]), graph)
        assert math.isclose(float(res.scores[b]), best, abs_tol=1e-9)
        # the returned path itself must score the optimum (ties may pick another path)
        scores = {p: s for s, p in path_scores(em[b], int(lengths[b]), graph, tropical=True)}
        assert math.isclose(scores[tuple(res.states[b].tolist())], best, abs_tol=1e-9)
        assert res.alignments[b].tolist() == graph.labels[res.states[b]].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_beam_never_above_exact_and_exact_at_full_width(seed, device):
    S, V, T = 6, 4, 5
    graph = random_graph(S, V, A=20, seed=seed).to(device)
    em = torch.randn(3, T, V, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64).log_softmax(-1).to(device)
    lengths = torch.tensor([T, 3, 1], device=device)
    exact = total_score(em, lengths, graph, backend="sparse")
    prev = None
    for k in range(1, S + 1):
        pruned = total_score(em, lengths, graph, beam=k, no_path="inf")
        assert bool((pruned <= exact + 1e-9).all()), (k, pruned, exact)
        if prev is not None:  # a wider beam never loses mass on these small graphs
            assert bool((pruned >= prev - 1e-9).all())
        prev = pruned
    assert torch.allclose(total_score(em, lengths, graph, beam=S), exact, atol=1e-9)
    assert torch.allclose(total_score(em, lengths, graph, beam=10 * S), exact, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_beam_viterbi(seed, device):
    """Pruned Viterbi: exact at full width, never above exact, its path scores what it says."""
    S, V, T = 6, 4, 5
    graph = random_graph(S, V, A=20, seed=seed)
    em = torch.randn(2, T, V, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([T, 3])
    exact = viterbi(em.to(device), lengths.to(device), graph.to(device))
    full = viterbi(em.to(device), lengths.to(device), graph.to(device), beam=S)
    assert torch.allclose(full.scores, exact.scores)
    narrow = viterbi(em.to(device), lengths.to(device), graph.to(device), beam=2)
    for b in range(2):
        assert float(narrow.scores[b]) <= float(exact.scores[b]) + 1e-9
        if narrow.states[b].numel():
            scores = {p: s for s, p in path_scores(em[b], int(lengths[b]), graph, tropical=True)}
            assert math.isclose(scores[tuple(narrow.states[b].tolist())],
                                float(narrow.scores[b]), abs_tol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_scatter_and_gather_log_paths_agree(seed, device, monkeypatch):
    """The log-space forward has two layouts (padded in-arcs, arc-list scatter): same results."""
    from uasr.graph import forward_backward as fb
    graph = random_graph(6, 4, A=20, seed=seed).to(device)
    em = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64).log_softmax(-1).to(device).requires_grad_(True)
    lengths = torch.tensor([6, 4, 1], device=device)

    def run():
        tot = total_score(em, lengths, graph, backend="sparse", no_path="inf")
        (grad,) = torch.autograd.grad(tot.sum(), em)
        return tot, grad, viterbi(em, lengths, graph)

    assert fb.in_arcs(graph) is not None
    t1, g1, v1 = run()
    monkeypatch.setattr(fb, "in_arcs", lambda graph: None)
    t2, g2, v2 = run()
    assert torch.allclose(t1, t2) and torch.allclose(g1, g2, equal_nan=True)
    assert torch.allclose(v1.scores, v2.scores)
