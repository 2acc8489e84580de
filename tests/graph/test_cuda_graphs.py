"""CUDA-graph replay of the pruned path equals eager execution."""

import pytest
import torch

from uasr.graph import total_score
from uasr.graph.cuda_graphs import _flatten, _rebuild
from uasr.graph.pruned import PrunedContext

from .helpers import random_graph


def test_flatten_rebuild_round_trip():
    ctx = PrunedContext(torch.zeros(1), torch.ones(2), torch.full((3,), 2.0))
    nested = (torch.tensor(5.0), ctx)
    flat = _flatten(nested)
    assert [t.numel() for t in flat] == [1, 1, 2, 3]
    again = _rebuild(nested, [t + 1 for t in flat])
    assert isinstance(again[1], PrunedContext)
    assert torch.equal(again[1].Ek, torch.full((3,), 3.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_captured_pruned_path_matches_eager(monkeypatch):
    graph = random_graph(40, 6, A=300, seed=0, dtype=torch.float32).to("cuda")
    graph.requires_grad_(True)
    em = torch.randn(4, 30, 6, device="cuda").log_softmax(-1).requires_grad_(True)
    lengths = torch.tensor([30, 20, 7, 1], device="cuda")
    results = []
    for flag in ("0", "1", "1"):  # eager, capture, replay
        monkeypatch.setenv("UASR_CUDA_GRAPHS", flag)
        tot = total_score(em, lengths, graph, beam=8)
        grads = torch.autograd.grad(tot.sum(), (em, graph.weights, graph.final))
        results.append((tot, *grads))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("packed", [False, True])
def test_captured_log_space_path_matches_eager(packed, monkeypatch):
    from uasr.graph import Graph
    if packed:
        graph = Graph.batch([random_graph(5, 6, A=12, seed=s, dtype=torch.float32)
                             for s in range(4)]).to("cuda")
    else:
        graph = random_graph(40, 6, A=300, seed=1, dtype=torch.float32).to("cuda")
    graph.requires_grad_(True)
    em = torch.randn(4, 30, 6, device="cuda").log_softmax(-1).requires_grad_(True)
    lengths = torch.tensor([30, 20, 7, 1], device="cuda")
    results = []
    for flag in ("0", "1", "1"):  # eager, capture, replay
        monkeypatch.setenv("UASR_CUDA_GRAPHS", flag)
        tot = total_score(em, lengths, graph, backend="sparse", no_path="inf")
        grads = torch.autograd.grad(tot.sum(), (em, graph.weights, graph.final))
        results.append((tot, *grads))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, atol=1e-5, equal_nan=True)
