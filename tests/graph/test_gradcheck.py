"""torch.autograd.gradcheck in float64: emissions and graph weights, every backend."""

import pytest
import torch

from uasr.graph import Graph, total_score

from .helpers import random_graph

NONDET_TOL = {"cpu": 0.0, "cuda": 1e-12}


@pytest.mark.parametrize("backend,beam", [("dense", None), ("block", None), ("sparse", None),
                                          ("auto", 3)])
def test_gradcheck_emissions_and_weights(backend, beam, device):
    base = random_graph(5, 3, A=14, seed=1)
    em = torch.randn(2, 4, 3, dtype=torch.float64, device=device).log_softmax(-1)
    em.requires_grad_(True)
    w = base.weights.clone().to(device).requires_grad_(True)
    init = base.init.clone().to(device).requires_grad_(True)
    final = base.final.clone().to(device).requires_grad_(True)
    lengths = torch.tensor([4, 3], device=device)

    def f(em, w, init, final):
        g = Graph(labels=base.labels.to(device), src=base.src.to(device), dst=base.dst.to(device),
                  weights=w, init=init, final=final)
        return total_score(em, lengths, g, backend=backend, beam=beam)

    # CUDA index_add_ adds in a nondeterministic order: repeated backwards may differ by rounding
    assert torch.autograd.gradcheck(f, (em, w, init, final), eps=1e-6, atol=1e-6,
                                    nondet_tol=NONDET_TOL[em.device.type])


def test_gradcheck_packed_graphs(device):
    graphs = [random_graph(3, 3, A=6, seed=s) for s in range(3)]
    packed = Graph.batch(graphs).to(device)
    em = torch.randn(3, 4, 3, dtype=torch.float64, device=device).log_softmax(-1)
    em.requires_grad_(True)
    w = packed.weights.clone().requires_grad_(True)
    lengths = torch.tensor([4, 2, 3], device=device)

    def f(em, w):
        g = Graph(labels=packed.labels, src=packed.src, dst=packed.dst, weights=w,
                  init=packed.init, final=packed.final, batch_offsets=packed.batch_offsets)
        return total_score(em, lengths, g)

    assert torch.autograd.gradcheck(f, (em, w), eps=1e-6, atol=1e-6,
                                    nondet_tol=NONDET_TOL[em.device.type])
