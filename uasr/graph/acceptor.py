"""Label acceptors: the LM side of a graph, before a topology turns it into frames.

An :class:`Acceptor` is an arc-labelled weighted automaton over label ids with one start state
and final log-weights: an n-gram LM (states = histories), a linear acceptor of one transcript,
or any prior over label sequences (e.g. a prefix tree). :func:`uasr.graph.topology.compose`
expands it into a state-emitting :class:`~uasr.graph.graph.Graph`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping, Optional, Sequence

import torch

from uasr.lm.arpa import LN10, NgramLM

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


@dataclass
class BackoffAcceptor:
    """An n-gram LM in backoff form: its stored n-grams as arcs plus one backoff arc per history.

    States are the histories the LM stores (``start`` = ``<s>``); the unigram history ``()``
    has no backoff arc, so the backoff arcs form a DAG (no epsilon loops). Taking the mass
    ``m`` at history ``h`` to every label ``w`` with exactly ``m * p(w | h)``, and to the
    right next history, needs three arc kinds (see :mod:`uasr.graph.backoff` for the proof):

    - explicit arcs ``h -w-> next(h, w)`` for the stored n-grams ``h w``, weight ``log p(w | h)``;
    - the backoff arc ``h -> parent(h)`` (the longest stored proper suffix), ``log bow(h)``;
    - a *correction* ``h -w-> next(h[1:], w)`` of weight ``log(bow(h) p(w | h[1:]))`` per
      explicit arc, which the log semiring **subtracts**: the backoff path would otherwise
      also deliver ``w`` (ARPA backs off only for labels ``h`` does not store). Where it ends
      where its explicit arc ends (always at the top order) the two are merged at build time
      into one arc of weight ``log d(w | h)``, ``d = p(w | h) - bow(h) p(w | h[1:]) >= 0``.

    Attributes:
        num_states: number of histories.
        src, dst, label: ``[X]`` explicit arcs.
        logp: ``[X]`` ``log p(w | h)`` (the tropical weight: Viterbi ignores corrections).
        logw: ``[X]`` log-semiring weight (``log d`` where merged, else ``logp``; ``-inf``
            where ``d`` was clamped to 0).
        corr_src, corr_dst, corr_label, corr_logw: ``[Y]`` the corrections not merged.
        backoff, backoff_logw: ``[num_states]`` parent history (-1 for ``()``) and ``log bow``.
        init_dst, init_label, init_logp: the first label's exact distribution ``p(w | <s>)``.
        final: ``[num_states]`` final log-weights.
        clamped: n-grams whose ``d`` was slightly negative (ARPA rounding) and set to 0.
    """

    num_states: int
    src: Tensor
    dst: Tensor
    label: Tensor
    logp: Tensor
    logw: Tensor
    corr_src: Tensor
    corr_dst: Tensor
    corr_label: Tensor
    corr_logw: Tensor
    backoff: Tensor
    backoff_logw: Tensor
    init_dst: Tensor
    init_label: Tensor
    init_logp: Tensor
    final: Tensor
    clamped: int = 0
    start: int = 0


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
            backed-off probabilities; ``minimal`` is far smaller for large or pruned LMs, but
            still has a full row of |C| arcs per history. ``"backoff"``: a
            :class:`BackoffAcceptor` with arcs only for the stored n-grams plus backoff arcs
            (for large LMs: 5-gram phone LMs, word LMs); exact in the log semiring for an
            interpolated LM (``uasr.lm``'s Kneser-Ney or Witten-Bell); a back-off (Katz) LM,
            whose ``p(w | h) < bow(h) p(w | h[1:])`` for some n-gram, raises ValueError.
        use_eos: add ``log p(</s> | h)`` as the final weight of every history state.
        exclude: LM tokens to leave out of the graph (e.g. ``<unk>``); their probability mass
            is simply dropped (the graph is then slightly sub-normalised).
    """
    if expand not in ("full", "minimal", "backoff"):
        raise ValueError(f"expand must be 'full', 'minimal' or 'backoff', got {expand!r}")
    sym = dict(symbols) if isinstance(symbols, Mapping) else {s: i for i, s in enumerate(symbols)}
    exclude = set(exclude) | ({"<unk>"} - set(sym))  # an <unk> with no label id is dropped
    tokens = [t for t in lm.vocab if t not in ("<s>", "</s>") and t not in exclude]
    missing = [t for t in tokens if t not in sym]
    if missing:
        raise ValueError(f"LM tokens without a label id: {missing[:10]} "
                         f"(add them to the symbol table or pass exclude=[...])")
    if expand == "backoff":
        return _backoff_acceptor(lm, {t: sym[t] for t in tokens}, use_eos)
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


# d(w | h) below -RTOL * p(w | h) is a back-off (Katz) LM, not ARPA rounding of an interpolated one
D_RTOL = 1e-4


def _backoff_acceptor(lm: NgramLM, labels: Mapping[str, int], use_eos: bool) -> BackoffAcceptor:
    """The :class:`BackoffAcceptor` of ``lm`` over the tokens in ``labels`` (token -> id)."""
    n = lm.order
    start: tuple[str, ...] = ("<s>",) if n > 1 else ()
    stored = lambda h: not h or lm.has_context(h)  # noqa: E731  (() is always a history)
    continuations: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for k in range(1, n + 1):
        for g in lm.probs[k]:
            if g[-1] in labels:
                continuations[g[:-1]].append(g[-1])

    def parent(h: tuple[str, ...]) -> tuple[str, ...]:
        h = h[1:]
        while not stored(h):
            h = h[1:]
        return h

    def next_history(h: tuple[str, ...], w: str) -> tuple[str, ...]:
        new = (h + (w,))[-(n - 1):] if n > 1 else ()
        while not stored(new):
            new = new[1:]
        return new

    index: dict[tuple[str, ...], int] = {}
    order: list[tuple[str, ...]] = []

    def state(h: tuple[str, ...]) -> int:
        if h not in index:
            index[h] = len(order)
            order.append(h)
        return index[h]

    state(start)
    arcs: list[tuple[int, int, int, float, float]] = []  # src, dst, label, logp, logw
    corrections: list[tuple[int, int, int, float]] = []
    clamped = 0
    i = 0
    while i < len(order):  # breadth-first over the histories reachable from <s>
        h = order[i]
        i += 1
        if h:
            state(parent(h))
        log_bow = lm.backoffs[len(h)].get(h, 0.0) * LN10 if h else -math.inf
        for w in continuations.get(h, ()):
            lp = lm.logprob(w, h)
            lc = log_bow + lm.logprob(w, h[1:]) if h else -math.inf
            if lp == lc == -math.inf:
                continue
            d = math.exp(lp) - math.exp(lc)
            if d < -D_RTOL * math.exp(lp):
                raise ValueError(
                    f"expand='backoff' needs an interpolated LM but n-gram {' '.join(h + (w,))!r} has "
                    f"p = {math.exp(lp):.6g} < bow * p(lower order) = {math.exp(lc):.6g} "
                    f"(a back-off/Katz LM?): use expand='minimal'")
            dst = state(next_history(h, w))
            if lc == -math.inf:
                arcs.append((index[h], dst, labels[w], lp, lp))
            elif next_history(h[1:], w) == order[dst]:  # correction ends where the arc does
                clamped += d < 0
                arcs.append((index[h], dst, labels[w], lp, math.log(d) if d > 0 else -math.inf))
            else:
                arcs.append((index[h], dst, labels[w], lp, lp))
                corrections.append((index[h], state(next_history(h[1:], w)), labels[w], lc))
    first = [(state(next_history(start, w)), lab, lm.logprob(w, start)) for w, lab in labels.items()]
    first = [f for f in first if f[2] > -math.inf]
    parents = [index[parent(h)] if h else -1 for h in order]
    bows = [lm.backoffs[len(h)].get(h, 0.0) * LN10 if h else 0.0 for h in order]

    def col(rows: list, j: int, dtype: torch.dtype) -> Tensor:
        return torch.tensor([r[j] for r in rows], dtype=dtype)

    i64, f64 = torch.int64, torch.float64
    return BackoffAcceptor(
        num_states=len(order), src=col(arcs, 0, i64), dst=col(arcs, 1, i64),
        label=col(arcs, 2, i64), logp=col(arcs, 3, f64), logw=col(arcs, 4, f64),
        corr_src=col(corrections, 0, i64), corr_dst=col(corrections, 1, i64),
        corr_label=col(corrections, 2, i64), corr_logw=col(corrections, 3, f64),
        backoff=torch.tensor(parents, dtype=i64), backoff_logw=torch.tensor(bows, dtype=f64),
        init_dst=col(first, 0, i64), init_label=col(first, 1, i64), init_logp=col(first, 2, f64),
        final=torch.tensor([lm.logprob("</s>", h) if use_eos else 0.0 for h in order], dtype=f64),
        clamped=int(clamped))


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
