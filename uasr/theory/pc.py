"""The LM matrix P_C (paper condition 2) and the quantities of the bound built from it.

``P_C`` is ``N x |C|``: row ``n`` is the distribution of the label at position ``n`` under the
prior over label sequences of length ``N`` (position-dependent unigrams). The bound of
Theorem 1 scales with ``||P_C^+||_1``; condition 2 asks for full column rank (so ``N >= |C|``).

Sources of a prior:
- an explicit table over all ``|C|^N`` sequences (:func:`pc_from_prior`, by marginalising);
- an n-gram LM for any ``N`` by a forward-backward recursion over LM histories, never by
  enumeration (:func:`pc_from_chain` and the builders :func:`chain_from_bigram`,
  :func:`chain_from_trigram`, :func:`chain_from_table`, :func:`chain_from_lm`).

Sentence ends: an LM also predicts ``</s>``. ``eos`` says which length-``N`` prior is meant:
- ``"at_least"`` (default): the first ``N`` labels of sentences with at least ``N`` labels,
  i.e. ``p(c_1^N) ∝ prod_n p(c_n | h_n)`` with the ``</s>`` mass dropped. This is what counting
  positions over the sentences of a corpus that are at least ``N`` long estimates.
- ``"exactly"``: sentences of exactly ``N`` labels (the final ``p(</s> | h_N)`` is included).
- ``"renorm"``: every LM row renormalised over the labels (``</s>`` removed step by step).
For priors without ``</s>`` (rows summing to one over labels) the first and last agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

EOS_MODES = ("at_least", "exactly", "renorm")


@dataclass
class LabelChain:
    """A prior over label sequences as a weighted automaton (float64, probabilities).

    Attributes:
        num_states, num_labels: sizes; state ``start`` begins every sequence.
        src, dst, label: ``[A]`` int arcs (an arc emits ``label``).
        prob: ``[A]`` arc probabilities ``p(label | src history)``.
        end: ``[num_states]`` probability of ``</s>`` after each history (0 if none).
    """

    num_states: int
    num_labels: int
    src: np.ndarray
    dst: np.ndarray
    label: np.ndarray
    prob: np.ndarray
    end: np.ndarray
    start: int = 0


def _check_eos(eos: str) -> None:
    if eos not in EOS_MODES:
        raise ValueError(f"eos must be one of {EOS_MODES}, got {eos!r}")


def pc_from_chain(chain: LabelChain, N: int, eos: str = "at_least") -> np.ndarray:
    """``P_C`` ``[N, C]`` of an automaton prior by forward-backward over its states.

    Cost ``O(N * arcs)``. Forward and backward vectors are rescaled at every position (the
    scale cancels because each row of ``P_C`` is normalised), so long ``N`` cannot underflow.
    """
    _check_eos(eos)
    if N < 1:
        raise ValueError(f"N must be >= 1, got {N}")
    S, C = chain.num_states, chain.num_labels
    src, dst, lab, p = chain.src, chain.dst, chain.label, chain.prob.astype(np.float64)
    if eos == "renorm":
        out = np.bincount(src, weights=p, minlength=S)
        p = p / np.where(out > 0, out, 1.0)[src]
    # beta[n][s]: (scaled) mass of completing a sequence from state s after n labels.
    beta = [np.empty(0)] * (N + 1)
    last = chain.end.astype(np.float64) if eos == "exactly" else np.ones(S)
    if eos == "exactly" and not np.any(last > 0):
        raise ValueError("eos='exactly' needs </s> probabilities, but this prior has none "
                         "(use eos='at_least')")
    beta[N] = last / max(last.max(), 1e-300)
    for n in range(N - 1, 0, -1):
        b = np.bincount(src, weights=p * beta[n + 1][dst], minlength=S)
        beta[n] = b / max(b.max(), 1e-300)
    alpha = np.zeros(S)
    alpha[chain.start] = 1.0
    P = np.zeros((N, C))
    for n in range(1, N + 1):
        flow = alpha[src] * p  # mass entering each arc at position n
        row = np.bincount(lab, weights=flow * beta[n][dst], minlength=C)
        z = row.sum()
        if not z > 0:
            raise ValueError(f"the prior gives no sequence of length {N} (position {n} is "
                             f"unreachable); check the LM or use a smaller N")
        P[n - 1] = row / z
        a = np.bincount(dst, weights=flow, minlength=S)
        alpha = a / a.sum()
    return P


def sequence_index(C: int, N: int) -> np.ndarray:
    """``[C^N, N]`` labels of every sequence, row-major (sequence ``k`` has digits base C)."""
    return np.stack(np.unravel_index(np.arange(C ** N), (C,) * N), axis=1)


def pc_from_prior(prior: np.ndarray, C: int, N: int) -> np.ndarray:
    """``P_C`` from an explicit prior ``[..., C^N]`` (or ``[..., C, ..., C]``) by marginalising.

    Leading batch dimensions are kept: the result is ``[..., N, C]``.
    """
    prior = np.asarray(prior, dtype=np.float64)
    flat = prior
    if prior.shape[-1] != C ** N and prior.ndim >= N and prior.shape[-N:] == (C,) * N:
        flat = prior.reshape(prior.shape[:prior.ndim - N] + (C ** N,))
    if flat.shape[-1] != C ** N:
        raise ValueError(f"prior must have C^N = {C ** N} entries per sequence (or trailing "
                         f"shape {(C,) * N}), got shape {prior.shape}")
    idx = sequence_index(C, N)
    onehot = np.zeros((C ** N, N, C))
    onehot[np.arange(C ** N)[:, None], np.arange(N)[None, :], idx] = 1.0
    return np.einsum("...k,knc->...nc", flat, onehot)


def chain_from_bigram(trans: np.ndarray, start: np.ndarray,
                      end: np.ndarray | None = None) -> LabelChain:
    """A bigram prior: ``trans[a, c] = p(c | a)``, ``start[c] = p(c | <s>)``, ``end[a] = p(</s>|a)``.

    States: 0 = ``<s>``, ``1 + a`` = last label ``a``.
    """
    trans, start = np.asarray(trans, np.float64), np.asarray(start, np.float64)
    C = start.shape[0]
    if trans.shape != (C, C):
        raise ValueError(f"bigram table must be [C, C] = [{C}, {C}], got {trans.shape}")
    a = np.arange(C)
    src = np.concatenate([np.zeros(C, int), np.repeat(1 + a, C)])
    dst = np.concatenate([1 + a, np.tile(1 + a, C)])
    lab = np.concatenate([a, np.tile(a, C)])
    prob = np.concatenate([start, trans.reshape(-1)])
    e = np.zeros(C + 1)
    if end is not None:
        e[1:] = np.asarray(end, np.float64)
    return LabelChain(C + 1, C, src, dst, lab, prob, e)


def chain_from_table(table: np.ndarray) -> LabelChain:
    """An n-gram prior from a dense table over an extended alphabet (index ``C`` = BOS/EOS).

    ``table`` has shape ``(C+1,) * n``: ``table[h_1, ..., h_{n-1}, c]`` is ``p(c | h)``, where a
    history index ``C`` is ``<s>`` (padding at the sentence start: the first label is predicted
    from ``(<s>, ..., <s>)``) and the predicted index ``C`` is ``</s>``. Only histories
    reachable from the start are expanded.
    """
    table = np.asarray(table, np.float64)
    n = table.ndim
    C = table.shape[0] - 1
    if n < 1 or any(d != C + 1 for d in table.shape):
        raise ValueError(f"n-gram table must have shape (C+1,)*n, got {table.shape}")
    if n == 1:
        return LabelChain(1, C, np.zeros(C, int), np.zeros(C, int), np.arange(C),
                          table[:C].copy(), np.array([table[C]]))
    start = (C,) * (n - 1)
    index = {start: 0}
    order = [start]
    src, dst, lab, prob, end = [], [], [], [], []
    i = 0
    while i < len(order):
        h = order[i]
        row = table[h]
        end.append(row[C])
        for c in np.nonzero(row[:C] > 0)[0]:
            h2 = h[1:] + (int(c),)
            j = index.setdefault(h2, len(order))
            if j == len(order):
                order.append(h2)
            src.append(i)
            dst.append(j)
            lab.append(int(c))
            prob.append(row[c])
        i += 1
    return LabelChain(len(order), C, np.array(src), np.array(dst), np.array(lab),
                      np.array(prob), np.array(end))


def chain_from_trigram(tri: np.ndarray, second: np.ndarray, start: np.ndarray) -> LabelChain:
    """A trigram prior: ``start[c] = p(c|<s>)``, ``second[a, c] = p(c|<s> a)``,
    ``tri[a, b, c] = p(c | a b)`` (no ``</s>``)."""
    tri, second, start = (np.asarray(x, np.float64) for x in (tri, second, start))
    C = start.shape[0]
    if second.shape != (C, C) or tri.shape != (C, C, C):
        raise ValueError(f"trigram tables must be [C,C] and [C,C,C] with C={C}, got "
                         f"{second.shape} and {tri.shape}")
    table = np.zeros((C + 1,) * 3)
    table[:C, :C, :C] = tri
    table[C, :C, :C] = second
    table[C, C, :C] = start
    return chain_from_table(table)


def chain_from_lm(lm, symbols: Mapping[str, int] | Sequence[str] | None = None) -> LabelChain:
    """A prior from an :class:`uasr.lm.arpa.NgramLM` (back-off resolved), float64.

    ``symbols``: token -> label id (default: the LM's tokens other than ``<s>``/``</s>``/
    ``<unk>`` in vocabulary order). States are all histories of ``order - 1`` tokens that
    can follow ``<s>``, as in :func:`uasr.graph.ngram_acceptor` with ``expand="full"``.
    """
    specials = ("<s>", "</s>", "<unk>")
    if symbols is None:
        symbols = [t for t in lm.vocab if t not in specials]
    sym = dict(symbols) if isinstance(symbols, Mapping) else {s: i for i, s in enumerate(symbols)}
    tokens = [t for t in lm.vocab if t not in specials]
    missing = [t for t in tokens if t not in sym]
    if missing:
        raise ValueError(f"LM tokens without a label id: {missing[:10]} (add them to symbols)")
    n = lm.order
    start: tuple[str, ...] = ("<s>",) if n > 1 else ()
    index = {start: 0}
    order = [start]
    src, dst, lab, prob, end = [], [], [], [], []
    i = 0
    while i < len(order):
        h = order[i]
        end.append(math.exp(lm.logprob("</s>", h)))
        for tok in tokens:
            lp = lm.logprob(tok, h)
            if lp == -math.inf:
                continue
            h2 = (h + (tok,))[-(n - 1):] if n > 1 else ()
            j = index.setdefault(h2, len(order))
            if j == len(order):
                order.append(h2)
            src.append(i)
            dst.append(j)
            lab.append(sym[tok])
            prob.append(math.exp(lp))
        i += 1
    return LabelChain(len(order), len(sym), np.array(src), np.array(dst), np.array(lab),
                      np.array(prob), np.array(end))


def pc_from_lm(lm, N: int, symbols=None, eos: str = "at_least") -> np.ndarray:
    """``P_C`` ``[N, C]`` of an :class:`~uasr.lm.arpa.NgramLM` (see :func:`chain_from_lm`)."""
    return pc_from_chain(chain_from_lm(lm, symbols), N, eos)


# ----------------------------------------------------------------------------- matrix terms


def singular_values(P: np.ndarray) -> np.ndarray:
    """Singular values ``[..., C]`` in decreasing order, padded with zeros when ``N < C``
    (then ``P`` cannot have full column rank)."""
    P = np.asarray(P, np.float64)
    s = np.linalg.svd(P, compute_uv=False)
    C = P.shape[-1]
    if s.shape[-1] < C:
        s = np.concatenate([s, np.zeros(s.shape[:-1] + (C - s.shape[-1],))], axis=-1)
    return s


def sigma_min(P: np.ndarray) -> np.ndarray | float:
    """The ``|C|``-th singular value of ``P`` (0 when ``N < |C|``)."""
    s = singular_values(P)[..., -1]
    return float(s) if np.ndim(s) == 0 else s


def column_rank(P: np.ndarray, tol: float | None = None) -> np.ndarray | int:
    """Numerical column rank: singular values above ``tol`` (default ``max(N, C) * eps * σ_max``,
    as :func:`numpy.linalg.matrix_rank`)."""
    s = singular_values(P)
    if tol is None:
        tol = max(np.shape(P)[-2:]) * np.finfo(np.float64).eps * s[..., :1]
    r = (s > tol).sum(-1)
    return int(r) if np.ndim(r) == 0 else r


def full_column_rank(P: np.ndarray, tol: float | None = None) -> np.ndarray | bool:
    """Condition 2: ``rank(P_C) == |C|`` at tolerance ``tol`` (see :func:`column_rank`)."""
    r = column_rank(P, tol) == np.shape(P)[-1]
    return bool(r) if np.ndim(r) == 0 else r


def pinv_norms(P: np.ndarray) -> dict[str, np.ndarray]:
    """``||P_C^+||_1`` as the induced norm (max absolute column sum of the ``C x N`` ``P_C^+``)
    and as the entrywise sum of absolute values (``induced <= entrywise <= N * induced``)."""
    Pp = np.linalg.pinv(np.asarray(P, np.float64))
    a = np.abs(Pp)
    return {"induced": a.sum(-2).max(-1), "entrywise": a.sum((-2, -1))}
