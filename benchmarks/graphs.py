"""Benchmark graphs: random phone n-gram LMs (40 phones) x loop topology, built vectorised.

States are all histories of ``n - 1`` phones (label = the last phone, ids 1..40; id 0 is left
free for a blank/silence so that ``V = 41`` as in the CTC comparison). Every state moves to
``(h[1:], c)`` with ``log p(c | h) + log(1 - stay)`` or stays with ``log(stay)``. The
probabilities are Dirichlet(1) draws (normalised exponentials): the graph has the size and structure of a real phone
LM, which is all that speed depends on.
"""

from __future__ import annotations

import math

import torch

from uasr.graph import Graph

NUM_PHONES = 40
V = NUM_PHONES + 1


def ngram_loop_graph(order: int, num_phones: int = NUM_PHONES, stay: float = 0.5,
                     seed: int = 0) -> Graph:
    gen = torch.Generator().manual_seed(seed)
    C = num_phones
    S = C ** (order - 1)
    probs = -torch.rand(S, C, generator=gen).clamp_min(1e-12).log()  # Dirichlet(1) rows
    logp = (probs / probs.sum(1, keepdim=True)).log()
    h = torch.arange(S)
    nxt = (h % (S // C)).unsqueeze(1) * C + torch.arange(C).unsqueeze(0) if order > 1 \
        else torch.zeros(S, C, dtype=torch.int64) + torch.arange(C)
    src = torch.cat([h.repeat_interleave(C), h])
    dst = torch.cat([nxt.reshape(-1), h])
    weights = torch.cat([logp.reshape(-1) + math.log(1 - stay), torch.full((S,), math.log(stay))])
    labels = (h % C) + 1
    return Graph(labels=labels, src=src, dst=dst, weights=weights,
                 init=torch.full((S,), -math.log(S)), final=torch.zeros(S),
                 new_token=torch.cat([torch.ones(S * C, dtype=torch.bool),
                                      torch.zeros(S, dtype=torch.bool)]))


def bigram_loop_graph() -> Graph:
    return ngram_loop_graph(2)


def trigram_loop_graph() -> Graph:
    return ngram_loop_graph(3)


def fourgram_graph() -> Graph:
    return ngram_loop_graph(4)
