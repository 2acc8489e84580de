"""Topologies: how label sequences from an :class:`Acceptor` are spread over frames.

``compose(acceptor, topology)`` builds the product LM x topology directly as a state-emitting
:class:`Graph`. Product states are pairs ``(q, c)``: acceptor state ``q`` reached by emitting
label ``c`` (plus ``(q, blank)`` / ``(q, silence)`` states where the topology has them).

- :func:`one_to_one`: one label per observation (segment-level tokens, cipher, simulation).
- :func:`loop`: each frame either enters a new label (LM weight, history advances) or stays in
  the current one (loop weight). Optional silence outside the LM history; optional ban on an
  immediate repeat at LM level (a repeat is otherwise indistinguishable from staying);
  optional bound on the stays per label (a label spans at most ``1 + max_stay`` frames).
- :func:`ctc`: CTC with blank (repeats need a blank in between), as in ``F.ctc_loss``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from uasr.graph.acceptor import Acceptor, BackoffAcceptor, linear_acceptor, ngram_acceptor
from uasr.graph.backoff import BackoffGraph
from uasr.graph.graph import Graph
from uasr.lm.arpa import NgramLM, read_arpa

NEG_INF = -math.inf


@dataclass(frozen=True)
class Topology:
    kind: str  # "one_to_one" | "loop" | "ctc"
    stay_prob: float = 0.0
    silence: Optional[int] = None
    silence_prob: float = 0.0
    forbid_repeat: bool = False
    blank: int = 0
    max_stay: Optional[int] = None


def one_to_one() -> Topology:
    """Exactly one label per frame/observation."""
    return Topology("one_to_one")


def loop(stay_prob: float = 0.5, *, silence: Optional[int] = None, silence_prob: float = 0.1,
         forbid_repeat: bool = False, max_stay: Optional[int] = None) -> Topology:
    """Stay in the current label with ``stay_prob``, else enter the next one (LM weight).

    Args:
        stay_prob: self-loop probability of every label state (0 < stay_prob < 1).
        silence: label id of an optional silence that may follow any label (and open the
            utterance) without entering the LM history; None for no silence.
        silence_prob: probability of inserting a silence when leaving a label.
        forbid_repeat: drop LM arcs that repeat the current label (k2/RWTH "no consecutive").
        max_stay: at most this many stays per label (None: unbounded). Each label state is
            copied ``max_stay`` times, copy k reached after k stays; the last copy must leave
            (probability 1). For segment-level tokens from an over-segmenting segmenter: a phone
            may span one or two segments but not absorb many, which an unbounded geometric loop
            lets a broad label do cheaply.
    """
    if not 0.0 < stay_prob < 1.0:
        raise ValueError(f"loop: stay_prob must be in (0, 1), got {stay_prob}")
    if silence is not None and not 0.0 < silence_prob < 1.0:
        raise ValueError(f"loop: silence_prob must be in (0, 1), got {silence_prob}")
    if max_stay is not None and max_stay < 1:
        raise ValueError(f"loop: max_stay must be >= 1 (or None for unbounded), got {max_stay}")
    return Topology("loop", stay_prob=stay_prob, silence=silence, silence_prob=silence_prob,
                    forbid_repeat=forbid_repeat, max_stay=max_stay)


def ctc(blank: int = 0) -> Topology:
    """CTC topology; ``blank`` must not be a label of the acceptor."""
    return Topology("ctc", blank=blank)


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi if lo == NEG_INF else hi + math.log1p(math.exp(lo - hi))


def _log(p: float) -> float:
    return math.log(p) if p > 0 else NEG_INF


def compose(acc: Acceptor | BackoffAcceptor, topo: Topology) -> Graph | BackoffGraph:
    """The product acceptor x topology as a state-emitting :class:`Graph` (a
    :class:`~uasr.graph.backoff.BackoffGraph` for a :class:`BackoffAcceptor`).

    Weights are kept in float64 (LM probabilities lose nothing); the algorithms cast them
    to the compute dtype.
    """
    if isinstance(acc, BackoffAcceptor):
        return _compose_backoff(acc, topo)
    A_src, A_dst = acc.src.tolist(), acc.dst.tolist()
    A_lab, A_w = acc.label.tolist(), acc.weights.detach().tolist()
    A_fin = acc.final.detach().tolist()
    if topo.kind == "ctc" and topo.blank in A_lab:
        raise ValueError(f"ctc: label {topo.blank} is the blank and cannot be an acceptor label")
    if topo.kind == "loop" and topo.silence is not None and topo.silence in A_lab:
        raise ValueError(f"loop: silence label {topo.silence} must not be an LM label")

    out_arcs: dict[int, list[int]] = {}
    for i, q in enumerate(A_src):
        out_arcs.setdefault(q, []).append(i)

    states: dict[tuple[int, int, int], int] = {}  # (acceptor state, label, stays so far)
    labels: list[int] = []
    init: list[float] = []
    final: list[float] = []

    def state(q: int, c: int, k: int = 0) -> int:
        s = states.get((q, c, k))
        if s is None:
            s = states[(q, c, k)] = len(labels)
            labels.append(c)
            init.append(NEG_INF)
            final.append(A_fin[q])
        return s

    src: list[int] = []
    dst: list[int] = []
    w: list[float] = []
    new_tok: list[bool] = []

    def arc(a: int, b: int, weight: float, new: bool) -> None:
        if weight > NEG_INF:
            src.append(a)
            dst.append(b)
            w.append(weight)
            new_tok.append(new)

    def set_init(s: int, weight: float) -> None:
        init[s] = _logaddexp(init[s], weight)

    kind = topo.kind
    stay = _log(topo.stay_prob) if kind == "loop" else NEG_INF
    move = _log(1.0 - topo.stay_prob) if kind == "loop" else 0.0
    sil = topo.silence if kind == "loop" else None
    to_sil = _log(topo.silence_prob) if sil is not None else NEG_INF
    no_sil = _log(1.0 - topo.silence_prob) if sil is not None else 0.0
    blank = topo.blank if kind == "ctc" else None

    # Breadth-first over reachable product states, starting from the acceptor's start state.
    start = acc.start
    pending: list[tuple[int, int, int]] = []
    for i in out_arcs.get(start, []):
        s = state(A_dst[i], A_lab[i])
        set_init(s, A_w[i] + no_sil)
        pending.append((A_dst[i], A_lab[i], 0))
    if sil is not None:
        set_init(state(start, sil), to_sil)
        pending.append((start, sil, 0))
    if blank is not None:
        set_init(state(start, blank), 0.0)
        pending.append((start, blank, 0))

    seen = set()
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        q, c, k = key
        s = states[key]
        is_filler = c == sil or c == blank
        bounded = kind == "loop" and topo.max_stay is not None and not is_filler
        must_leave = bounded and k == topo.max_stay
        # stay in the same label (a bounded label moves on to its next copy)
        if kind == "loop" and not bounded:
            arc(s, s, stay, False)
        elif bounded and not must_leave:
            arc(s, state(q, c, k + 1), stay, False)
            pending.append((q, c, k + 1))
        elif kind == "ctc":
            arc(s, s, 0.0, False)
        leave = 0.0 if must_leave else move
        # enter the next label through an acceptor arc
        for i in out_arcs.get(q, []):
            c2 = A_lab[i]
            if not is_filler and c2 == c and (kind == "ctc" or topo.forbid_repeat):
                continue
            s2 = state(A_dst[i], c2)
            extra = leave + (0.0 if is_filler else no_sil)
            arc(s, s2, A_w[i] + extra, True)
            pending.append((A_dst[i], c2, 0))
        # optional filler after a label
        if sil is not None and not is_filler:
            arc(s, state(q, sil), leave + to_sil, True)
            pending.append((q, sil, 0))
        if blank is not None and not is_filler:
            arc(s, state(q, blank), 0.0, True)
            pending.append((q, blank, 0))

    return Graph(labels=torch.tensor(labels, dtype=torch.int64),
                 src=torch.tensor(src, dtype=torch.int64), dst=torch.tensor(dst, dtype=torch.int64),
                 weights=torch.tensor(w, dtype=torch.float64),
                 init=torch.tensor(init, dtype=torch.float64),
                 final=torch.tensor(final, dtype=torch.float64),
                 new_token=torch.tensor(new_tok, dtype=torch.bool),
                 blank=blank if blank is not None else sil)


def _compose_backoff(acc: BackoffAcceptor, topo: Topology) -> BackoffGraph:
    """The product of a backoff-form LM and a topology: emitting states ``(q, c)`` as in
    :func:`compose`; their LM transitions go through the history nodes (see
    :mod:`uasr.graph.backoff`)."""
    if topo.kind == "ctc" or topo.forbid_repeat or topo.max_stay is not None:
        raise ValueError("expand='backoff' supports one_to_one and loop without forbid_repeat or "
                         "max_stay (both need the label or a stay count in the state): use "
                         "expand='minimal'")
    is_loop = topo.kind == "loop"
    stay = _log(topo.stay_prob) if is_loop else NEG_INF
    move = _log(1.0 - topo.stay_prob) if is_loop else 0.0
    sil = topo.silence if is_loop else None
    to_sil = _log(topo.silence_prob) if sil is not None else NEG_INF
    no_sil = _log(1.0 - topo.silence_prob) if sil is not None else 0.0
    if sil is not None and sil in set(acc.label.tolist()) | set(acc.init_label.tolist()):
        raise ValueError(f"loop: silence label {sil} must not be an LM label")
    fin = acc.final.tolist()

    states: dict[tuple[int, int], int] = {}
    labels: list[int] = []
    node: list[int] = []  # history node each state leaves through
    enter: list[float] = []

    def state(q: int, c: int) -> int:
        s = states.get((q, c))
        if s is None:
            s = states[(q, c)] = len(labels)
            labels.append(c)
            node.append(q)
            enter.append(move + (0.0 if c == sil else no_sil))
        return s

    first = [(state(q, c), lp + no_sil) for q, c, lp in
             zip(acc.init_dst.tolist(), acc.init_label.tolist(), acc.init_logp.tolist())]
    arc_state = [state(q, c) for q, c in zip(acc.dst.tolist(), acc.label.tolist())]
    corr_state = [state(q, c) for q, c in zip(acc.corr_dst.tolist(), acc.corr_label.tolist())]
    src: list[int] = []
    dst: list[int] = []
    w: list[float] = []
    if sil is not None:
        for s in range(len(labels)):  # silence may follow any label, in the same history
            src.append(s)
            dst.append(state(node[s], sil))
            w.append(move + to_sil)
        first.append((state(acc.start, sil), to_sil))
    new_token = [True] * len(src)
    if is_loop:
        src += range(len(labels))
        dst += range(len(labels))
        w += [stay] * len(labels)
        new_token += [False] * len(labels)
    init = torch.full((len(labels),), NEG_INF, dtype=torch.float64)
    for s, lp in first:
        init[s] = _logaddexp(float(init[s]), lp)
    i64, f64 = torch.int64, torch.float64
    emit = Graph(labels=torch.tensor(labels, dtype=i64), src=torch.tensor(src, dtype=i64),
                 dst=torch.tensor(dst, dtype=i64), weights=torch.tensor(w, dtype=f64),
                 init=init, final=torch.tensor([fin[q] for q in node], dtype=f64),
                 new_token=torch.tensor(new_token, dtype=torch.bool), blank=sil)
    return BackoffGraph(
        emit=emit, enter_node=torch.tensor(node, dtype=i64), enter_logw=torch.tensor(enter, dtype=f64),
        backoff=acc.backoff, backoff_logw=acc.backoff_logw, arc_node=acc.src,
        arc_state=torch.tensor(arc_state, dtype=i64), arc_logp=acc.logp, arc_logw=acc.logw,
        corr_node=acc.corr_src, corr_state=torch.tensor(corr_state, dtype=i64),
        corr_logw=acc.corr_logw, clamped=acc.clamped)


def linear_graph(labels: Sequence[int], topology: Topology) -> Graph:
    """The graph of one transcript under ``topology`` (e.g. a supervised CTC graph)."""
    return compose(linear_acceptor(labels), topology)


def ngram_graph(lm: NgramLM | str | Path, symbols, topology: Topology, *, expand: str = "full",
                use_eos: bool = True) -> Graph | BackoffGraph:
    """LM x topology for an :class:`~uasr.lm.arpa.NgramLM` or an ARPA file path.

    ``symbols`` maps LM tokens to label ids (see :func:`ngram_acceptor` for ``expand`` and
    ``use_eos``). ``expand="backoff"`` returns a :class:`~uasr.graph.backoff.BackoffGraph`
    (arcs only for the stored n-grams, plus backoff arcs: for large LMs), which
    ``total_score`` and ``viterbi`` accept like a ``Graph``. For an LM given as a dense
    probability table use ``compose(table_acceptor(logp), topology)``.
    """
    if isinstance(lm, (str, Path)):
        lm = read_arpa(lm)
    return compose(ngram_acceptor(lm, symbols, expand=expand, use_eos=use_eos), topology)
