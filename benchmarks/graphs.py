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

from uasr.graph import Graph, loop, ngram_graph
from uasr.graph.backoff import BackoffGraph
from uasr.lm.ngram import train_ngram

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



def fourgram_backoff_graph(num_sentences: int = 3000, seed: int = 0) -> BackoffGraph:
    """A Kneser-Ney 4-gram (``uasr.lm``) of phone text x loop, ``expand="backoff"``.

    The text (``num_sentences`` of 10-40 phones) comes from a random phone bigram chain in
    which each phone has 6 likely successors (95 % of the mass), so the LM is sparse like a
    real one (most 4-grams unseen) rather than a dense random table like the graphs above.
    """
    gen = torch.Generator().manual_seed(seed)
    C = NUM_PHONES
    likely = torch.rand(C + 1, C, generator=gen).argsort(1)[:, :6]  # row C: sentence start
    weights = -torch.rand(C + 1, 6, generator=gen).log()
    chain = torch.full((C + 1, C), 0.05 / C)
    chain.scatter_add_(1, likely, 0.95 * weights / weights.sum(1, keepdim=True))
    prev = torch.full((num_sentences,), C)
    steps = []
    for _ in range(40):
        prev = torch.multinomial(chain[prev], 1, generator=gen).squeeze(1)
        steps.append(prev)
    tokens = torch.stack(steps, 1).tolist()
    lengths = torch.randint(10, 41, (num_sentences,), generator=gen).tolist()
    text = [[f"p{c}" for c in row[:n]] for row, n in zip(tokens, lengths)]
    phones = [f"p{i}" for i in range(C)]
    lm = train_ngram(text, 4, vocab=phones)
    return ngram_graph(lm, {p: i + 1 for i, p in enumerate(phones)}, loop(0.5), expand="backoff")
