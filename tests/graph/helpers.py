"""Independent references for the engine tests: brute-force enumeration over state paths."""

from __future__ import annotations

import itertools
import math

import torch

from uasr.graph import Graph


def random_graph(S: int, V: int, A: int, seed: int, dtype=torch.float64) -> Graph:
    g = torch.Generator().manual_seed(seed)
    return Graph(labels=torch.randint(0, V, (S,), generator=g),
                 src=torch.randint(0, S, (A,), generator=g),
                 dst=torch.randint(0, S, (A,), generator=g),
                 weights=torch.randn(A, generator=g, dtype=dtype),
                 init=torch.randn(S, generator=g, dtype=dtype),
                 final=torch.randn(S, generator=g, dtype=dtype))


def arc_matrix(graph: Graph, tropical: bool = False) -> torch.Tensor:
    """log W[s', s] with parallel arcs combined (logsumexp, or max for the tropical semiring)."""
    S = graph.num_states
    W = torch.full((S, S), -math.inf, dtype=torch.float64)
    combine = torch.maximum if tropical else torch.logaddexp
    for a, b, w in zip(graph.src.tolist(), graph.dst.tolist(), graph.weights.tolist()):
        W[a, b] = combine(W[a, b], torch.tensor(w, dtype=torch.float64))
    return W


def path_scores(emissions: torch.Tensor, n: int, graph: Graph, tropical: bool = False):
    """(score, path) for every state sequence of length n (one utterance's emissions [T, V])."""
    W = arc_matrix(graph, tropical)
    lab = graph.labels.tolist()
    init, final = graph.init.double(), graph.final.double()
    em = emissions.double()
    for path in itertools.product(range(graph.num_states), repeat=n):
        sc = init[path[0]] + final[path[-1]]
        sc = sc + sum(em[t, lab[s]] for t, s in enumerate(path))
        sc = sc + sum(W[path[i], path[i + 1]] for i in range(n - 1))
        yield float(sc), path


def brute_total(emissions: torch.Tensor, n: int, graph: Graph) -> float:
    scores = torch.tensor([s for s, _ in path_scores(emissions, n, graph)], dtype=torch.float64)
    return float(torch.logsumexp(scores, 0))


def brute_best(emissions: torch.Tensor, n: int, graph: Graph) -> tuple[float, tuple]:
    return max(path_scores(emissions, n, graph, tropical=True), key=lambda x: x[0])
