"""Label acceptors: the LM side of a graph, before a topology turns it into frames.

An :class:`Acceptor` is an arc-labelled weighted automaton over label ids with one start state
and final log-weights: an n-gram LM (states = histories), a linear acceptor of one transcript,
or any prior over label sequences (e.g. a prefix tree). :func:`uasr.graph.topology.compose`
expands it into a state-emitting :class:`~uasr.graph.graph.Graph`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping, Optional, Sequence

import torch

from uasr.lm.arpa import NgramLM

Tensor = torch.Tensor


@dataclass
class Acceptor:
    """Arc-labelled automaton over label ids (no epsilon arcs).

    Attributes:
        num_states: number of states; state ``start`` is the start state.
        src, dst, label: ``[A]`` int64 arcs.
        weights: ``[A]`` arc log-weights.
        final: ``[num_states]`` final log-weights (``-inf``: not final).
    """

    num_states: int
    src: Tensor
    dst: Tensor
    label: Tensor
    weights: Tensor
    final: Tensor
    start: int = 0

    def __post_init__(self) -> None:
        self.src = torch.as_tensor(self.src, dtype=torch.int64)
        self.dst = torch.as_tensor(self.dst, dtype=torch.int64)
        self.label = torch.as_tensor(self.label, dtype=torch.int64)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64) \
            if not torch.is_tensor(self.weights) else self.weights
        self.final = torch.as_tensor(self.final, dtype=torch.float64) \
            if not torch.is_tensor(self.final) else self.final
        if not (self.src.shape == self.dst.shape == self.label.shape == self.weights.shape):
            raise ValueError("Acceptor src/dst/label/weights must have equal shapes")
        if self.final.numel() != self.num_states:
            raise ValueError(f"Acceptor.final must have {self.num_states} entries")


def linear_acceptor(labels: Sequence[int]) -> Acceptor:
    """The acceptor of exactly one label sequence (a supervised transcript), weight 0."""
    n = len(labels)
    if n == 0:
        raise ValueError("linear_acceptor needs at least one label")
    final = torch.full((n + 1,), -math.inf)
    final[n] = 0.0
    return Acceptor(num_states=n + 1, src=torch.arange(n), dst=torch.arange(1, n + 1),
                    label=torch.as_tensor(list(labels), dtype=torch.int64),
                    weights=torch.zeros(n), final=final)


def _history_acceptor(start: Hashable,
                      arcs: Callable[[Hashable], Iterable[tuple[int, float, Hashable]]],
                      final: Callable[[Hashable], float]) -> Acceptor:
    """Breadth-first expansion of LM histories: ``arcs(h)`` yields ``(label, logp, next)``."""
    index: dict = {start: 0}
    order = [start]
    src, dst, lab, w = [], [], [], []
    i = 0
    while i < len(order):
        for label, lp, h2 in arcs(order[i]):
            if lp == -math.inf:
                continue
            j = index.get(h2)
            if j is None:
                j = index[h2] = len(order)
                order.append(h2)
            src.append(i)
            dst.append(j)
            lab.append(label)
            w.append(lp)
        i += 1
    return Acceptor(num_states=len(order), src=torch.tensor(src, dtype=torch.int64),
                    dst=torch.tensor(dst, dtype=torch.int64),
                    label=torch.tensor(lab, dtype=torch.int64),
                    weights=torch.tensor(w, dtype=torch.float64),
                    final=torch.tensor([final(h) for h in order], dtype=torch.float64))


def ngram_acceptor(
    lm: NgramLM,
    symbols: Mapping[str, int] | Sequence[str],
    *,
    expand: str = "full",
    use_eos: bool = True,
    exclude: Sequence[str] = (),
) -> Acceptor:
    """The n-gram LM as an acceptor whose states are LM histories (no epsilon arcs).

    Args:
        lm: an :class:`~uasr.lm.arpa.NgramLM` (read from ARPA or estimated by :mod:`uasr.lm`).
        symbols: token -> label id (or a list whose index is the id). Tokens of the LM that are
            not in ``symbols`` raise an error (``<s>``, ``</s>`` are never labels; ``<unk>`` is dropped
            unless it has an id).
        expand: ``"full"``: every history of ``order - 1`` tokens that can follow ``<s>``
            (|C|^(n-1) states; exact and regular, best for the dense/block backends of small
            phone LMs). ``"minimal"``: only the histories the LM itself stores; a transition
            goes to the longest stored suffix of the new history. Both give exactly the LM's
            backed-off probabilities; ``minimal`` is far smaller for large or pruned LMs.
        use_eos: add ``log p(</s> | h)`` as the final weight of every history state.
        exclude: LM tokens to leave out of the graph (e.g. ``<unk>``); their probability mass
            is simply dropped (the graph is then slightly sub-normalised).
    """
    if expand not in ("full", "minimal"):
        raise ValueError(f"expand must be 'full' or 'minimal', got {expand!r}")
    sym = dict(symbols) if isinstance(symbols, Mapping) else {s: i for i, s in enumerate(symbols)}
    exclude = set(exclude) | ({"<unk>"} - set(sym))  # an <unk> with no label id is dropped
    tokens = [t for t in lm.vocab if t not in ("<s>", "</s>") and t not in exclude]
    missing = [t for t in tokens if t not in sym]
    if missing:
        raise ValueError(f"LM tokens without a label id: {missing[:10]} "
                         f"(add them to the symbol table or pass exclude=[...])")
    n = lm.order
    start: tuple[str, ...] = ("<s>",) if n > 1 else ()

    def next_state(h: tuple[str, ...], tok: str) -> tuple[str, ...]:
        new = (h + (tok,))[-(n - 1):] if n > 1 else ()
        if expand == "full":
            return new
        while new and not lm.has_context(new):
            new = new[1:]
        return new

    return _history_acceptor(
        start, lambda h: ((sym[t], lm.logprob(t, h), next_state(h, t)) for t in tokens),
        lambda h: lm.logprob("</s>", h) if use_eos else 0.0)


def table_acceptor(logp: Tensor, final_logp: Optional[Tensor] = None) -> Acceptor:
    """An n-gram acceptor from a dense table of log-probabilities over labels ``0..C-1``.

    ``logp`` has shape ``(C + 1,) * (n - 1) + (C,)``: ``logp[h_1, ..., h_{n-1}, c] =
    log p(c | h)``, where history index ``C`` stands for ``<s>`` (so ``logp[C, ..., C, c]``
    is the distribution of the first label). ``final_logp`` (shape ``(C + 1,) * (n - 1)``)
    gives ``log p(</s> | h)``; 0 when None. States are the histories reachable from
    ``(<s>, ..., <s>)``, so an order-n table yields the same graph as a full ARPA expansion.
    """
    n = logp.dim()
    C = logp.shape[-1]
    if any(d != C + 1 for d in logp.shape[:-1]):
        raise ValueError(f"table_acceptor: logp must have shape {(C + 1,) * (n - 1) + (C,)}, "
                         f"got {tuple(logp.shape)}")
    if final_logp is not None and tuple(final_logp.shape) != tuple(logp.shape[:-1]):
        raise ValueError(f"table_acceptor: final_logp must have shape {tuple(logp.shape[:-1])}")
    table = logp.detach().to(torch.float64).cpu()
    fl = None if final_logp is None else final_logp.detach().to(torch.float64).cpu()

    def arcs(h: tuple[int, ...]):
        row = table[h].tolist() if h else table.tolist()
        return ((c, lp, (h + (c,))[1:] if h else ()) for c, lp in enumerate(row))

    return _history_acceptor((C,) * (n - 1), arcs,
                             lambda h: 0.0 if fl is None else float(fl[h] if h else fl))
