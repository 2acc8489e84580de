"""LM graphs that keep the n-gram LM's backoff structure (``ngram_graph(..., expand="backoff")``).

A fully expanded LM x topology graph has a row of |C| arcs per LM history: infeasible for
5-gram phone LMs or word LMs. A :class:`BackoffGraph` has arcs only for the stored n-grams,
plus one backoff arc per history. It is state-emitting like :class:`~uasr.graph.graph.Graph`
(the emitting states and the topology's own arcs are a ``Graph``, ``emit``); the LM part of a
frame's transition is factored through non-emitting *history nodes*:

1. an emitting state ``(q, c)`` hands the mass that leaves its label (the topology's "move
   on" weight) to its history node ``q``;
2. the backoff cascade: node ``h`` passes ``bow(h)`` times its mass to ``parent(h)`` (its
   longest stored proper suffix): a DAG down to the unigram node ``()``, no epsilon loops;
3. LM arcs: node ``h`` sends ``p(w | h)`` times its mass to the emitting state
   ``(next(h, w), w)`` for every stored n-gram ``h w``, and each *correction* subtracts
   ``bow(h) p(w | h[1:])`` times the mass of ``h`` from ``(next(h[1:], w), w)``.

Why this is exact (log semiring): mass ``m`` entering node ``h`` yields exactly
``m p(w | h)`` at ``next(h, w)`` for every label ``w`` (induction over the history length; the
unigram node has an arc per label). Labels ``h`` stores leave through their explicit arcs;
the backoff arc passes ``m bow(h)`` to the parent, which by induction yields
``m bow(h) p(w | h[1:])`` at ``next(h[1:], w)`` for *every* ``w``: exactly ARPA's
``p(w | h)`` and ``next(h, w)`` for the labels ``h`` does not store, and exactly what the
corrections remove for the labels it does store. At the top order ``next(h, w) =
next(h[1:], w)``, so an explicit arc and its correction merge (at build time, in float64)
into one arc ``d(w | h) = p(w | h) - bow(h) p(w | h[1:]) >= 0`` (interpolated LMs). Below
the top order (sentence starts, unseen contexts) the corrections stay separate and are
subtracted per frame; the rounding is ~eps relative to the node's mass and results are
clamped at 0.

The textbook WFST (``d`` arcs + backoff arcs, no corrections) gives the right probability
for one token but, below the top order, a backoff path ends in a *shorter* history than
``next(h, w)``, so the probabilities of the following tokens are wrong.

Viterbi (tropical semiring) cannot subtract: it uses the explicit arcs with ``p(w | h)`` and
the backoff arcs, no corrections. This is the standard WFST approximation: a backoff path may
be taken where an explicit arc exists. Its score is never above the explicit arc's
(``p(w | h) >= bow(h) p(w | h[1:])``) and at the top order it ends in the same history, so the
result is exact for bigram LMs; otherwise the graph holds every exact path plus such backoff
paths into shorter histories, so the best score is >= the exact best score.

Supported: :func:`~uasr.graph.score.total_score` (gradients w.r.t. the emissions; probability
space with torch sparse CSR matmuls, and a log-space path for rows that underflow or with
``backend="sparse"``) and :func:`~uasr.graph.score.viterbi` on CPU or CUDA tensors, for the
``one_to_one`` and ``loop`` topologies. Weight gradients, ``beam=``, ``forbid_repeat`` and
``ctc`` raise a ValueError (use ``expand="minimal"``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch

from uasr.graph import forward_backward as fb
from uasr.graph.graph import Graph
from uasr.graph.score import NO_PATH, NoPathError, ViterbiResult, _check_inputs, _mask_padding

Tensor = torch.Tensor
NEG_INF = -math.inf


@dataclass
class BackoffGraph:
    """LM x topology with the LM's backoff structure kept (see the module docstring).

    Attributes:
        emit: the emitting states (labels, init, final, blank) and the topology's own arcs
            (self-loops, silence insertion).
        enter_node, enter_logw: ``[S]`` each emitting state's history node and the log-weight
            of leaving its label through the LM (``-inf``: never).
        backoff, backoff_logw: ``[N]`` parent node (-1 for the unigram node) and ``log bow``.
        arc_node, arc_state, arc_logp, arc_logw: ``[X]`` LM arcs node -> emitting state, with
            ``log p(w | h)`` (tropical) and the log-semiring weight (``log d`` where merged
            with its correction).
        corr_node, corr_state, corr_logw: ``[Y]`` corrections (subtracted in the log semiring).
        clamped: n-grams whose ``d`` was slightly negative (ARPA rounding) and set to 0.
    """

    emit: Graph
    enter_node: Tensor
    enter_logw: Tensor
    backoff: Tensor
    backoff_logw: Tensor
    arc_node: Tensor
    arc_state: Tensor
    arc_logp: Tensor
    arc_logw: Tensor
    corr_node: Tensor
    corr_state: Tensor
    corr_logw: Tensor
    clamped: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    _TENSORS = ("enter_node", "enter_logw", "backoff", "backoff_logw", "arc_node", "arc_state",
                "arc_logp", "arc_logw", "corr_node", "corr_state", "corr_logw")

    @property
    def num_states(self) -> int:
        """Emitting states."""
        return self.emit.num_states

    @property
    def num_nodes(self) -> int:
        """LM history nodes (non-emitting)."""
        return self.backoff.numel()

    @property
    def num_arcs(self) -> int:
        """Topology arcs + enter arcs + backoff arcs + LM arcs + corrections."""
        return (self.emit.num_arcs + int(torch.isfinite(self.enter_logw).sum())
                + int((self.backoff >= 0).sum()) + self.arc_node.numel() + self.corr_node.numel())

    @property
    def labels(self) -> Tensor:
        return self.emit.labels

    @property
    def device(self) -> torch.device:
        return self.emit.device

    @property
    def requires_grad(self) -> bool:
        return self.emit.requires_grad or any(getattr(self, k).requires_grad for k in self._TENSORS)

    def to(self, device: torch.device | str) -> "BackoffGraph":
        device = torch.device(device)
        if device == self.device:
            return self
        moved = {k: getattr(self, k).to(device) for k in self._TENSORS}
        return BackoffGraph(emit=self.emit.to(device), clamped=self.clamped, **moved)


# ---------------------------------------------------------------------------- operator parts
@dataclass
class _Arcs:
    """Weighted arcs ``src -> dst`` between two index spaces (``shape = (rows, cols)``)."""

    src: Tensor
    dst: Tensor
    logw: Tensor
    shape: tuple[int, int]

    def finite(self) -> "_Arcs":
        ok = torch.isfinite(self.logw)
        return _Arcs(self.src[ok], self.dst[ok], self.logw[ok], self.shape)

    def cast(self, dtype: torch.dtype) -> "_Arcs":
        return _Arcs(self.src, self.dst, self.logw.to(dtype), self.shape)


@dataclass
class _Parts:
    enter: _Arcs  # emitting state -> every node of its backoff chain (the cascade, folded)
    lm_sum: _Arcs  # node -> emitting state, log-semiring weights (merged d or p)
    corr: _Arcs  # node -> emitting state, subtracted
    lm_max: _Arcs  # node -> emitting state, tropical weights (p)
    direct: _Arcs  # emitting state -> emitting state (topology)
    direct_new: Tensor  # [A] whether a direct arc starts a new token


def _enter_closure(g: BackoffGraph) -> _Arcs:
    """Each emitting state's enter arc followed by 0, 1, ... backoff arcs (<= order entries
    per state): the cascade as one sparse matrix, so a frame needs one matmul for it."""
    S, N = g.num_states, g.num_nodes
    state = torch.arange(S, device=g.device)
    node, logw = g.enter_node, g.enter_logw
    ok = torch.isfinite(logw)
    state, node, logw = state[ok], node[ok], logw[ok]
    parts = []
    while state.numel():
        parts.append((state, node, logw))
        parent = g.backoff[node]
        up = parent >= 0
        state, logw, node = state[up], logw[up] + g.backoff_logw[node[up]], parent[up]
    cat = [torch.cat([p[i] for p in parts]) if parts else torch.empty(0, device=g.device)
           for i in range(3)]
    return _Arcs(cat[0].long(), cat[1].long(), cat[2].to(torch.float64), (S, N))


def _parts(g: BackoffGraph, dtype: torch.dtype) -> _Parts:
    key = ("parts", dtype, g.device)
    if key not in g._cache:
        S, N = g.num_states, g.num_nodes
        e = g.emit
        g._cache[key] = _Parts(
            enter=_enter_closure(g).cast(dtype),
            lm_sum=_Arcs(g.arc_node, g.arc_state, g.arc_logw, (N, S)).finite().cast(dtype),
            corr=_Arcs(g.corr_node, g.corr_state, g.corr_logw, (N, S)).finite().cast(dtype),
            lm_max=_Arcs(g.arc_node, g.arc_state, g.arc_logp, (N, S)).finite().cast(dtype),
            direct=_Arcs(e.src, e.dst, e.weights.detach(), (S, S)).cast(dtype),
            direct_new=e.new_token)
    return g._cache[key]


# ---------------------------------------------------------------------------- probability space
def _csr(src: Tensor, dst: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore")
        coo = torch.sparse_coo_tensor(torch.stack([src, dst]), values, shape,
                                      check_invariants=False)
        return coo.coalesce().to_sparse_csr()


class BackoffTransitions:
    """One frame as sparse CSR matmuls, for :func:`~uasr.graph.forward_backward.scaled_forward`:
    ``u = ((a @ Enter) @ (LM - Corr) + a @ Direct + a * loop).clamp(0)``, and the transpose
    for ``bwd``. The clamp removes only the rounding of the subtracted corrections (the exact
    result is >= 0). Weights are probabilities, so no shift is needed (``wmax = 0``)."""

    name = "backoff"

    def __init__(self, g: BackoffGraph, dtype: torch.dtype):
        P = _parts(g, dtype)
        lm = _Arcs(torch.cat([P.lm_sum.src, P.corr.src]), torch.cat([P.lm_sum.dst, P.corr.dst]),
                   torch.cat([P.lm_sum.logw.exp(), -P.corr.logw.exp()]), P.lm_sum.shape)
        self.enter, self.enter_t = self._pair(P.enter.src, P.enter.dst, P.enter.logw.exp(), P.enter.shape)
        self.lm, self.lm_t = self._pair(lm.src, lm.dst, lm.logw, lm.shape)
        # self-loops as a diagonal (an elementwise product), the other topology arcs as CSR
        d = P.direct
        is_loop = d.src == d.dst
        self.loop = torch.zeros(g.num_states, dtype=dtype, device=g.device)
        self.loop.index_add_(0, d.src[is_loop], d.logw[is_loop].exp())
        self.direct = self.direct_t = None
        if bool((~is_loop).any()):
            self.direct, self.direct_t = self._pair(d.src[~is_loop], d.dst[~is_loop],
                                                    d.logw[~is_loop].exp(), d.shape)
        self.wmax = torch.zeros((), dtype=dtype, device=g.device)

    @staticmethod
    def _pair(src: Tensor, dst: Tensor, values: Tensor, shape: tuple[int, int]):
        """The matrix and its transpose as CSR (torch multiplies CSR @ dense, not dense @ CSR
        on every device)."""
        return _csr(src, dst, values, shape), _csr(dst, src, values, shape[::-1])

    def fwd(self, a: Tensor) -> Tensor:
        x = a.T.contiguous()  # [S, n]
        u = self.lm_t @ (self.enter_t @ x)
        if self.direct_t is not None:
            u = u + self.direct_t @ x
        return (u.T + a * self.loop).clamp_min_(0)

    def bwd(self, v: Tensor) -> Tensor:
        y = v.T.contiguous()
        b = self.enter @ (self.lm @ y)
        if self.direct is not None:
            b = b + self.direct @ y
        return (b.T + v * self.loop).clamp_min_(0)


def _transitions(g: BackoffGraph, dtype: torch.dtype) -> BackoffTransitions:
    key = ("transitions", dtype, g.device)
    if key not in g._cache:
        g._cache[key] = BackoffTransitions(g, dtype)
    return g._cache[key]


# ---------------------------------------------------------------------------- log space
def _lse(x: Tensor, arcs: _Arcs, transpose: bool = False) -> Tensor:
    """``out[r, j] = logsumexp_{arcs i -> j} x[r, i] + w`` (along the arcs, or against them)."""
    src, dst = (arcs.dst, arcs.src) if transpose else (arcs.src, arcs.dst)
    size = arcs.shape[0] if transpose else arcs.shape[1]
    if not src.numel():
        return x.new_full((x.shape[0], size), NEG_INF)
    return fb._scatter_logsumexp(x[:, src] + arcs.logw, dst, size)


def _log_sub(p: Tensor, q: Tensor) -> Tensor:
    """``log(exp(p) - exp(q))``, ``-inf`` where rounding made ``q >= p`` (exactly, ``q <= p``)."""
    return torch.where(q < p, p + torch.log1p(-torch.exp(q - torch.where(q < p, p, q))),
                       torch.full_like(p, NEG_INF))


def _log_fwd(a: Tensor, P: _Parts) -> Tensor:
    z = _lse(a, P.enter)
    pos = torch.logaddexp(_lse(z, P.lm_sum), _lse(a, P.direct))
    return _log_sub(pos, _lse(z, P.corr))


def _log_bwd(v: Tensor, P: _Parts) -> Tensor:
    pos = torch.logaddexp(_lse(_lse(v, P.lm_sum, True), P.enter, True), _lse(v, P.direct, True))
    return _log_sub(pos, _lse(_lse(v, P.corr, True), P.enter, True))


def _log_forward(E: Tensor, lengths: Tensor, g: BackoffGraph, P: _Parts) -> Tensor:
    """Forward log scores ``[R, T, S]``, frozen after each utterance's length."""
    R, T, S = E.shape
    alpha = torch.empty_like(E)
    alpha[:, 0] = g.emit.init.detach().to(E.dtype) + E[:, 0]
    for t in range(1, T):
        nxt = _log_fwd(alpha[:, t - 1], P)
        alpha[:, t] = torch.where((t < lengths).unsqueeze(1), nxt + E[:, t], alpha[:, t - 1])
    return alpha


def _log_backward(alpha: Tensor, E: Tensor, total: Tensor, g_out: Tensor, lengths: Tensor,
                  g: BackoffGraph, P: _Parts) -> Tensor:
    """Posteriors ``[R, T, S]`` scaled by ``g_out`` (the gradient w.r.t. the gathered emissions)."""
    R, T, S = E.shape
    final = g.emit.final.detach().to(E.dtype).expand(R, S)
    n = lengths.unsqueeze(1)
    gam = torch.zeros_like(E)
    beta = final.clone()
    for t in range(T - 1, -1, -1):
        active = t < n
        beta = torch.where(t == n - 1, final, beta)
        post = torch.exp(alpha[:, t] + beta - total.unsqueeze(1)) * g_out.unsqueeze(1)
        gam[:, t] = torch.where(active, post, torch.zeros_like(post))
        if t == 0:
            break
        beta = torch.where(active, _log_bwd(E[:, t] + beta, P), beta)
    return gam


# ---------------------------------------------------------------------------- total score
class _BackoffTotal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, emissions, graph, lengths, log_space, no_path):
        B = emissions.shape[0]
        em = _mask_padding(emissions.detach(), lengths)
        E = em[:, :, graph.labels]
        state: dict = {}
        if log_space:
            total = E.new_full((B,), NEG_INF)
            rows = torch.arange(B, device=E.device)
        else:
            trans = _transitions(graph, E.dtype)
            total, sctx = fb.scaled_forward(em, lengths, graph.emit, trans)
            state["scaled"] = (sctx, trans)
            # probability space underflowed (or there is truly no path): redo in log space
            rows = torch.nonzero(~torch.isfinite(total)).squeeze(1)
        if rows.numel():
            P = _parts(graph, E.dtype)
            alpha = _log_forward(E[rows], lengths[rows], graph, P)
            final = graph.emit.final.detach().to(E.dtype)
            total = total.clone()
            total[rows] = torch.logsumexp(alpha[:, -1] + final, dim=1)
            state["log"] = (rows, alpha, E[rows], P)
        bad = ~torch.isfinite(total)
        if no_path == "raise" and bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise NoPathError(
                f"utterance {i} (batch index) has no complete path through the graph in "
                f"{int(lengths[i])} frames; pass no_path='zero' or 'inf' to skip such utterances")
        ctx.state, ctx.graph, ctx.V = state, graph, emissions.shape[2]
        ctx.save_for_backward(lengths, total)
        if no_path == "zero":
            return torch.where(bad, torch.zeros_like(total), total)
        return total.clone()

    @staticmethod
    def backward(ctx, g):
        lengths, total = ctx.saved_tensors
        state, graph = ctx.state, ctx.graph
        ok = torch.isfinite(total)
        g = torch.where(ok, g, torch.zeros_like(g)).to(total.dtype)
        gam = None
        if "scaled" in state:
            sctx, trans = state["scaled"]
            g_sc = g.clone()
            if "log" in state:
                g_sc[state["log"][0]] = 0.0
            gam, *_ = fb.scaled_backward(sctx, g_sc, trans, need_weights=False)
        if "log" in state:
            rows, alpha, E, P = state["log"]
            Zs = torch.where(ok, total, torch.zeros_like(total))
            gam_log = _log_backward(alpha, E, Zs[rows], g[rows], lengths[rows], graph, P)
            if gam is None:
                gam = gam_log
            else:
                gam[rows] = gam_log
        B, T, _ = gam.shape
        grad = gam.new_zeros(B, T, ctx.V).index_add_(2, graph.labels, gam)
        return grad, None, None, None, None


def backoff_total_score(emissions: Tensor, lengths: Tensor, graph: BackoffGraph, *,
                        beam: Optional[int] = None, backend: str = "auto",
                        dtype: Optional[torch.dtype] = None, no_path: str = "raise") -> Tensor:
    """:func:`~uasr.graph.score.total_score` on a :class:`BackoffGraph` (same contract).

    ``backend="auto"``: probability space (sparse CSR matmuls), rows that underflow are
    redone in log space; ``backend="sparse"``: log space for every row.
    """
    if beam is not None:
        raise ValueError("beam= is not supported on expand='backoff' graphs (their forward is "
                         "already sparse and exact): drop beam= or use expand='full'/'minimal'")
    if backend not in ("auto", "sparse"):
        raise ValueError(f"backend {backend!r} is not available for expand='backoff' graphs "
                         f"(use 'auto' or 'sparse')")
    if no_path not in NO_PATH:
        raise ValueError(f"no_path must be one of {NO_PATH}, got {no_path!r}")
    if graph.requires_grad:
        raise ValueError("gradients w.r.t. graph weights are not supported on expand='backoff' "
                         "graphs; use expand='minimal' or 'full'")
    lengths = _check_inputs(emissions, lengths, graph.emit)
    work = emissions if dtype is None else emissions.to(dtype)
    total = _BackoffTotal.apply(work, graph, lengths, backend == "sparse", no_path)
    return total.to(emissions.dtype)


# ---------------------------------------------------------------------------- Viterbi
def _scatter_max(x: Tensor, index: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Per row, ``max_{i: index[i] = j} x[r, i]`` and the arg ``i`` (-1 where nothing lands)."""
    R, K = x.shape
    idx = index.expand(R, -1)
    val = x.new_full((R, size), NEG_INF).scatter_reduce_(1, idx, x, reduce="amax")
    hit = (x == val.gather(1, idx)) & torch.isfinite(x)
    cand = torch.where(hit, torch.arange(K, device=x.device).expand(R, -1), -1)
    arg = torch.full((R, size), -1, dtype=torch.int64, device=x.device)
    return val, arg.scatter_reduce_(1, idx, cand, reduce="amax")


def _max_step(delta: Tensor, P: _Parts) -> tuple[Tensor, Tensor, Tensor]:
    """One tropical frame: best score into each state, its previous state, and whether the
    step starts a new token."""
    z, z_arg = _scatter_max(delta[:, P.enter.src] + P.enter.logw, P.enter.dst, P.enter.shape[1])
    lm, lm_arg = _scatter_max(z[:, P.lm_max.src] + P.lm_max.logw, P.lm_max.dst, P.lm_max.shape[1])
    node = P.lm_max.src[lm_arg.clamp_min(0)]
    prev_lm = P.enter.src[z_arg.gather(1, node).clamp_min(0)]
    if not P.direct.src.numel():
        return lm, prev_lm, torch.ones_like(prev_lm, dtype=torch.bool)
    d, d_arg = _scatter_max(delta[:, P.direct.src] + P.direct.logw, P.direct.dst, P.direct.shape[1])
    a = d_arg.clamp_min(0)
    via_lm = lm >= d
    return (torch.where(via_lm, lm, d), torch.where(via_lm, prev_lm, P.direct.src[a]),
            via_lm | P.direct_new[a])


def backoff_viterbi(emissions: Tensor, lengths: Tensor, graph: BackoffGraph, *,
                    beam: Optional[int] = None) -> ViterbiResult:
    """:func:`~uasr.graph.score.viterbi` on a :class:`BackoffGraph` (the WFST approximation
    described in the module docstring: exact for bigram LMs, else >= the exact best score)."""
    if beam is not None:
        raise ValueError("viterbi(beam=...) is not supported on expand='backoff' graphs: drop beam=")
    lengths = _check_inputs(emissions, lengths, graph.emit)
    B, T, _ = emissions.shape
    with torch.no_grad():
        E = _mask_padding(emissions.detach(), lengths)[:, :, graph.labels]
        P = _parts(graph, E.dtype)
        S = graph.num_states
        delta = torch.empty_like(E)
        delta[:, 0] = graph.emit.init.detach().to(E.dtype) + E[:, 0]
        prev = torch.full((B, T, S), -1, dtype=torch.int32, device=E.device)
        new = torch.zeros((B, T, S), dtype=torch.bool, device=E.device)
        for t in range(1, T):
            val, prev_t, new_t = _max_step(delta[:, t - 1], P)
            prev[:, t], new[:, t] = prev_t.to(torch.int32), new_t
            delta[:, t] = torch.where((t < lengths).unsqueeze(1), val + E[:, t], delta[:, t - 1])
        last = delta[:, -1] + graph.emit.final.detach().to(E.dtype)
        scores, best = last.max(dim=1)
    prev, new, labels = prev.cpu(), new.cpu(), graph.labels.cpu()
    blank = graph.emit.blank
    states, aligns, toks = [], [], []
    for b in range(B):
        if not math.isfinite(float(scores[b])):
            states.append(torch.empty(0, dtype=torch.int64))
            aligns.append(torch.empty(0, dtype=torch.int64))
            toks.append([])
            continue
        s = int(best[b])
        path, starts = [s], []
        for t in range(int(lengths[b]) - 1, 0, -1):
            starts.append(bool(new[b, t, s]))
            s = int(prev[b, t, s])
            path.append(s)
        path, starts = path[::-1], [True] + starts[::-1]
        seq = [int(labels[s]) for t, s in enumerate(path)
               if int(labels[s]) != blank and (starts[t] or int(labels[path[t - 1]]) == blank)]
        st = torch.tensor(path, dtype=torch.int64)
        states.append(st)
        aligns.append(labels[st])
        toks.append(seq)
    return ViterbiResult(scores.to(emissions.dtype), states, aligns, toks)
