"""Forward-backward over a state-emitting graph, on the CPU/GPU with plain torch ops.

Two implementations with the same contract:

- :func:`scaled_forward` / :func:`scaled_backward`: probability space with per-frame
  rescaling (one matmul-like op per frame; the fast path for a shared graph).
- :func:`log_forward` / :func:`log_backward`: log space over the arc list with
  scatter-logsumexp (exact for any weights; handles packed per-utterance graphs; the
  fallback when probability space underflows).

``forward`` returns the per-utterance log total and a context for ``backward``, which
returns gradients (given ``g = dLoss/dtotal`` per utterance) w.r.t. the emissions, and
optionally w.r.t. arc, initial and final weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from uasr.graph.graph import Graph
from uasr.graph.transitions import LOOP, SIDE, BlockLayout, _max_finite

Tensor = torch.Tensor
NEG_INF = -math.inf


def _safe_shift(x: Tensor, dim: int) -> Tensor:
    """max over ``dim`` with -inf replaced by 0 (so ``x - shift`` never produces NaN)."""
    m = x.amax(dim=dim)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


# ---------------------------------------------------------------------------- prob space
@dataclass
class ScaledContext:
    A: Tensor  # [B, T, S] normalised forward probabilities (rows sorted by length, descending)
    P: Tensor  # [B, T, S] exp(emission - shift)
    c: Tensor  # [B, T] per-frame normalisers
    init_w: Tensor  # [S]
    final_w: Tensor  # [S]
    lengths: Tensor  # [B] sorted descending
    order: Tensor  # sorted row -> original row
    active: list[int]  # active[t] = number of rows with length > t


def scaled_forward(em: Tensor, lengths: Tensor, graph: Graph, trans) -> tuple[Tensor, ScaledContext]:
    """em: ``[B, T, V]`` log emissions per label (padding frames finite).

    Rows are processed sorted by length (descending), so frame ``t`` touches only the first
    ``active[t]`` rows: no masking ops inside the time loop.
    """
    B, T, _ = em.shape
    S = graph.num_states
    dtype = em.dtype
    lengths, order = torch.sort(lengths, descending=True)
    em = em[order]
    active = (torch.arange(T, device=em.device).unsqueeze(1) < lengths.unsqueeze(0)).sum(1).tolist()
    # shift and exp per label ([B, T, V]), then gather per state: S is often >> V
    used = graph.used_labels()
    shift = _safe_shift(em if used.numel() == em.shape[2] else em[:, :, used], 2)  # [B, T]
    P = torch.exp(em - shift.unsqueeze(-1))[:, :, graph.labels]
    init = graph.init.detach().to(dtype)
    final = graph.final.detach().to(dtype)
    imax, fmax = _max_finite(init), _max_finite(final)
    init_w, final_w = torch.exp(init - imax), torch.exp(final - fmax)
    tiny = torch.finfo(dtype).tiny

    A = torch.zeros(B, T, S, dtype=dtype, device=em.device)  # zeros: frames past a length
    c = torch.ones(B, T, dtype=dtype, device=em.device)
    u = init_w * P[:, 0]
    for t in range(T):
        n = active[t]
        if n == 0:  # every utterance has ended (emissions padded beyond the longest)
            break
        if t > 0:
            u = trans.fwd(A[:n, t - 1])
            u.mul_(P[:n, t])
        ct = u.amax(dim=1, keepdim=True).clamp_(min=tiny)  # a dead row stays all-zero
        torch.div(u, ct, out=A[:n, t])
        c[:n, t] = ct.squeeze(1)
    rows = torch.arange(B, device=em.device)
    fin = (A[rows, lengths - 1] * final_w).sum(1)
    valid = torch.arange(T, device=em.device) < lengths.unsqueeze(1)
    per_frame = torch.where(valid, shift + torch.log(c), torch.zeros_like(c))
    total = torch.log(fin) + fmax + imax + (lengths - 1).to(dtype) * trans.wmax + per_frame.sum(1)
    out = torch.empty_like(total)
    out[order] = total
    return out, ScaledContext(A, P, c, init_w, final_w, lengths, order, active)


def scaled_backward(ctx: ScaledContext, g: Tensor, trans, need_weights: bool):
    """Returns ``(gamma [B, T, S] scaled by g, arc_grad, init_grad, final_grad)``."""
    A, P, c, lengths, active = ctx.A, ctx.P, ctx.c, ctx.lengths, ctx.active
    B, T, S = A.shape
    g = g[ctx.order].unsqueeze(1)
    tiny = torch.finfo(A.dtype).tiny
    gam = torch.zeros_like(A)
    Y = torch.zeros_like(A) if need_weights else None
    beta = ctx.final_w.expand(B, S).clone()  # max entry 1 (final_w = exp(final - max))
    for t in range(T - 1, -1, -1):
        n = active[t]
        if n == 0:
            continue
        # rows whose last frame is t start here (rows are sorted by length)
        m = active[t + 1] if t + 1 < T else 0
        if m < n:
            beta[m:n] = ctx.final_w
        b = beta[:n]
        ab = A[:n, t] * b
        D = ab.sum(1, keepdim=True).clamp_(min=tiny)
        torch.mul(ab, g[:n] / D, out=gam[:n, t])
        if t == 0:
            break
        v = P[:n, t] * b
        if need_weights:
            torch.mul(v, g[:n] / (c[:n, t:t + 1] * D), out=Y[:n, t])
        nb = trans.bwd(v)
        torch.div(nb, nb.amax(1, keepdim=True).clamp_(min=tiny), out=beta[:n])
    arc_grad = init_grad = final_grad = None
    if need_weights:
        arc_grad = trans.arc_counts(A[:, :-1].reshape(-1, S), Y[:, 1:].reshape(-1, S))
        init_grad = gam[:, 0].sum(0)
        final_grad = gam[torch.arange(B, device=A.device), lengths - 1].sum(0)
    out = torch.empty_like(gam)
    out[ctx.order] = gam
    return out, arc_grad, init_grad, final_grad


# ---------------------------------------------------------------------------- log space
@dataclass
class LogContext:
    alpha: Tensor  # [R, T, S]
    E: Tensor  # [R, T, S]
    total_rows: Tensor  # [B]
    lengths_state: Tensor  # [R or 1, S] per-state utterance length


def _scatter_logsumexp(x: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[r, j] = logsumexp_{i: index[i]=j} x[r, i]`` (``-inf`` where nothing lands)."""
    R = x.shape[0]
    idx = index.unsqueeze(0).expand(R, -1)
    m = torch.full((R, size), NEG_INF, dtype=x.dtype, device=x.device)
    m.scatter_reduce_(1, idx, x, reduce="amax", include_self=True)
    mg = m.gather(1, idx)
    ex = torch.exp(x - torch.where(torch.isfinite(mg), mg, torch.zeros_like(mg)))
    s = torch.zeros((R, size), dtype=x.dtype, device=x.device).scatter_add_(1, idx, ex)
    return torch.where(torch.isfinite(m), m + torch.log(s), m)


class LogLayout:
    """Row/owner bookkeeping shared by the log-space routines (shared vs packed graphs)."""

    def __init__(self, graph: Graph, lengths: Tensor):
        self.packed = graph.is_batch
        S = graph.num_states
        if self.packed:
            if "owner" not in graph._cache:  # (repeat_interleave syncs: compute once)
                graph._cache["owner"] = graph.state_batch_index()
            self.owner = graph._cache["owner"]  # [S]
            self.len_state = lengths[self.owner].unsqueeze(0)  # [1, S]
        else:
            self.owner = None
            self.len_state = lengths.unsqueeze(1)  # [B, 1]
        self.S = S

    def gather_emissions(self, emissions: Tensor, labels: Tensor) -> Tensor:
        if self.packed:
            return emissions[self.owner, :, labels].T.contiguous().unsqueeze(0)  # [1, T, S]
        return emissions[:, :, labels]  # [B, T, S]

    def totals(self, x: Tensor, B: int) -> Tensor:
        """Per-utterance logsumexp of ``x [R, S]`` over its states."""
        if not self.packed:
            return torch.logsumexp(x, dim=1)
        return _scatter_logsumexp(x, self.owner, B).squeeze(0)


def _or(x: Optional[Tensor], default: Tensor, dtype: torch.dtype) -> Tensor:
    """``x`` (a weight override, e.g. a CUDA-graph static copy) or the graph's own tensor."""
    return (default if x is None else x).detach().to(dtype)


class InArcs:
    """In-arcs per state padded to the largest in-degree (pad: source S, arc A)."""

    def __init__(self, graph: Graph):
        S, A = graph.num_states, graph.num_arcs
        deg = torch.bincount(graph.dst, minlength=S)
        D = max(int(deg.max()) if A else 1, 1)
        order = torch.argsort(graph.dst, stable=True)
        start = torch.cumsum(deg, 0) - deg
        slot = torch.arange(A, device=graph.dst.device) - start[graph.dst[order]]
        self.src = torch.full((S, D), S, dtype=torch.int64, device=graph.dst.device)
        self.arc = torch.full((S, D), A, dtype=torch.int64, device=graph.dst.device)
        self.src[graph.dst[order], slot] = graph.src[order]
        self.arc[graph.dst[order], slot] = order
        self.S, self.A, self.D = S, A, D


def in_arcs(graph: Graph) -> Optional[InArcs]:
    """The padded in-arc table when padding wastes little (gather + reduce beats scatter)."""
    key = ("in_arcs", graph.device)
    if key not in graph._cache:
        S, A = graph.num_states, graph.num_arcs
        D = int(torch.bincount(graph.dst, minlength=S).max()) if A else 0
        graph._cache[key] = InArcs(graph) if A and S * D <= 4 * A else None
    return graph._cache[key]


def log_forward(E: Tensor, lengths: Tensor, graph: Graph, layout: LogLayout,
                semiring: str = "log", weights: Optional[Tensor] = None,
                init: Optional[Tensor] = None):
    """Log-space forward. ``semiring="tropical"`` also returns back-pointer arcs ``[R, T, S]``.

    Each frame reduces over every state's in-arcs: with the padded in-arc table a gather and
    one vectorised reduction (regular graphs), else a scatter-reduce over the arc list.
    """
    R, T, S = E.shape
    src, dst = graph.src, graph.dst
    w = _or(weights, graph.weights, E.dtype)
    alpha = torch.empty_like(E)
    alpha[:, 0] = _or(init, graph.init, E.dtype) + E[:, 0]
    # back-pointers as int32: R*T*S of them is the memory bound of exact Viterbi
    bp = torch.full((R, T, S), -1, dtype=torch.int32, device=E.device) if semiring == "tropical" else None
    arc_ids = torch.arange(src.numel(), device=E.device)
    table = in_arcs(graph)
    if table is not None:
        w_in = torch.cat([w, w.new_full((1,), NEG_INF)])[table.arc]  # [S, D]
        pad_col = E.new_full((R, 1), NEG_INF)
    for t in range(1, T):
        if table is not None:
            prev = torch.cat([alpha[:, t - 1], pad_col], dim=1)
            x = prev.index_select(1, table.src.view(-1)).view(R, S, -1) + w_in
            if semiring == "log":
                nxt = torch.logsumexp(x, dim=2)
            else:
                nxt, j = x.max(dim=2)
                bp[:, t] = torch.where(torch.isfinite(nxt),
                                       table.arc.expand(R, -1, -1).gather(2, j.unsqueeze(2)).squeeze(2),
                                       -1)
        else:
            x = alpha[:, t - 1, src] + w  # [R, A]
            if semiring == "log":
                nxt = _scatter_logsumexp(x, dst, S)
            else:
                idx = dst.unsqueeze(0).expand(R, -1)
                nxt = torch.full((R, S), NEG_INF, dtype=E.dtype, device=E.device)
                nxt.scatter_reduce_(1, idx, x, reduce="amax", include_self=True)
                best = torch.where((x == nxt.gather(1, idx)) & torch.isfinite(x),
                                   arc_ids.expand(R, -1), torch.full_like(idx, -1))
                bpt = torch.full((R, S), -1, dtype=torch.int64, device=E.device)
                bpt.scatter_reduce_(1, idx, best, reduce="amax", include_self=True)
                bp[:, t] = bpt
        active = t < layout.len_state
        alpha[:, t] = torch.where(active, nxt + E[:, t], alpha[:, t - 1])
    return alpha, bp


def best_arcs(w: Tensor, sel: Tensor, index: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """For the arcs ``sel`` (mask or ids) of weights ``w``, landing in slots ``index``: per
    slot the largest weight (-inf where none lands) and the arc that attains it, the largest
    arc id among ties (-1 where none). Parallel arcs collapse to their best this way."""
    ids = torch.arange(w.numel(), device=w.device)[sel]
    best = torch.full((size,), NEG_INF, dtype=w.dtype, device=w.device)
    best.scatter_reduce_(0, index, w[sel], reduce="amax")
    won = torch.where(w[sel] == best[index], ids, -1)
    arc = torch.full((size,), -1, dtype=torch.int64, device=w.device)
    return best, arc.scatter_reduce_(0, index, won, reduce="amax")


def block_tropical_forward(E: Tensor, lengths: Tensor, graph: Graph,
                           blocks: BlockLayout) -> tuple[Tensor, Tensor]:
    """Viterbi forward over a shared graph's dense blocks; the contract of
    ``log_forward(..., semiring="tropical")`` (``(delta [B, T, S], back-pointer arcs)``).

    States of a block share their source set, so a frame gathers only ``K x I`` previous
    scores and takes one max over ``[B, K, O, I]`` instead of gathering every arc's source
    (2.3x faster decoding of the synth trigram x loop graph on a 2-core CPU).
    """
    B, T, S = E.shape
    L = blocks
    w = graph.weights.detach().to(E.dtype)
    is_loop, is_side, in_block = L.flat == LOOP, L.flat == SIDE, L.flat >= 0
    Wb, Ab = best_arcs(w, in_block, L.flat[in_block], L.K * L.I * L.O)
    Wb = Wb.view(1, L.K, L.I, L.O).transpose(2, 3).contiguous()  # [1, K, O, I]
    Ab = Ab.view(1, L.K, L.I, L.O).transpose(2, 3).contiguous()
    rows = max(1, (1 << 20) // (L.K * L.I * L.O))  # ~4 MB of float32 per chunk
    loop_w, loop_arc = best_arcs(w, is_loop, graph.src[is_loop], S)
    side_w, side_arc = best_arcs(w, is_side, graph.dst[is_side], S)
    side_w, side_arc = side_w[L.side_dst], side_arc[L.side_dst]
    dst_flat = L.dst_idx.reshape(-1)
    delta = torch.empty_like(E)
    delta[:, 0] = graph.init.detach().to(E.dtype) + E[:, 0]
    bp = torch.full((B, T, S), -1, dtype=torch.int32, device=E.device)
    pad = E.new_full((B, 1), NEG_INF)
    active_rows = lengths.unsqueeze(1)
    for t in range(1, T):
        prev = delta[:, t - 1]
        x = torch.cat([prev, pad], dim=1)[:, L.src_idx]  # [B, K, I]
        # sources innermost ([B, K, O, I]): a contiguous last-dim max; chunks of rows stay in cache
        best = x.new_empty(B, L.K, L.O)
        i = torch.empty(B, L.K, L.O, dtype=torch.int64, device=E.device)
        for r in range(0, B, rows):
            torch.max(x[r:r + rows].unsqueeze(2) + Wb, dim=3, out=(best[r:r + rows], i[r:r + rows]))
        arc = Ab.expand(B, -1, -1, -1).gather(3, i.unsqueeze(3)).squeeze(3)
        nxt = E.new_full((B, S + 1), NEG_INF).index_copy_(1, dst_flat, best.reshape(B, -1))[:, :S]
        bpt = torch.full((B, S + 1), -1, dtype=torch.int64, device=E.device)
        bpt = bpt.index_copy_(1, dst_flat, arc.reshape(B, -1))[:, :S]
        if L.num_side:  # side states are in no block: one source each
            nxt[:, L.side_dst] = prev[:, L.side_src] + side_w
            bpt[:, L.side_dst] = side_arc
        stay = prev + loop_w
        take = stay > nxt
        nxt = torch.where(take, stay, nxt)
        bpt = torch.where(take, loop_arc, bpt)
        bp[:, t] = torch.where(torch.isfinite(nxt), bpt, -1)
        delta[:, t] = torch.where(t < active_rows, nxt + E[:, t], prev)
    return delta, bp


def log_total(alpha: Tensor, lengths: Tensor, graph: Graph, layout: LogLayout, B: int,
              final: Optional[Tensor] = None) -> Tensor:
    """Per-utterance log total from the forward variables (frozen after each length)."""
    last = alpha[:, -1] + _or(final, graph.final, alpha.dtype)
    return layout.totals(last, B)


def log_backward(alpha: Tensor, E: Tensor, total: Tensor, g: Tensor, graph: Graph,
                 layout: LogLayout, need_weights: bool, weights: Optional[Tensor] = None,
                 final: Optional[Tensor] = None):
    """Returns ``(gamma [R, T, S] scaled by g, arc_grad, init_grad, final_grad)``."""
    R, T, S = E.shape
    src, dst = graph.src, graph.dst
    w = _or(weights, graph.weights, E.dtype)
    final = _or(final, graph.final, E.dtype)
    if layout.packed:
        Z = total[layout.owner].unsqueeze(0)  # [1, S]
        gs = g[layout.owner].unsqueeze(0)
        Za, ga = Z[:, dst], gs[:, dst]  # per arc (arcs stay inside their graph)
    else:
        Z, gs = total.unsqueeze(1), g.unsqueeze(1)  # [B, 1]
        Za, ga = Z, gs
    gam = torch.zeros_like(E)
    arc_grad = torch.zeros_like(w) if need_weights else None
    beta = final.expand(R, S).clone()
    final_grad = torch.zeros_like(final) if need_weights else None
    for t in range(T - 1, -1, -1):
        active = t < layout.len_state
        starts = t == layout.len_state - 1
        beta = torch.where(starts, final.expand(R, S), beta)
        post = torch.exp(alpha[:, t] + beta - Z) * gs
        gam[:, t] = torch.where(active, post, torch.zeros_like(post))
        if need_weights:
            final_grad += torch.where(starts, post, torch.zeros_like(post)).sum(0)
        if t == 0:
            break
        y = (E[:, t] + beta)[:, dst] + w  # [R, A]
        if need_weights:
            xi = torch.exp(alpha[:, t - 1, src] + y - Za) * ga
            act_a = active if active.shape[1] == 1 else active[:, dst]
            arc_grad += torch.where(act_a, xi, torch.zeros_like(xi)).sum(0)
        nb = _scatter_logsumexp(y, src, S)
        beta = torch.where(active, nb, beta)
    init_grad = gam[:, 0].sum(0) if need_weights else None
    return gam, arc_grad, init_grad, final_grad
