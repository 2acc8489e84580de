"""Beam-pruned forward-backward: keep the ``k`` best states per frame (log space).

At every frame the surviving states' out-arcs propose successors; proposals that reach the
same state are recombined (logsumexp: states of an n-gram graph *are* LM histories, so this is
recombination by history), the frame's emission is added, and the ``k`` best states survive.
The result is the total over the kept paths: equal to the exact total when ``k >= S`` and
never above it. The backward pass runs over the same kept lattice, so the gradient is exact
for the pruned objective. Memory is ``O(B T k)`` instead of ``O(B T S)``: the path for 4-gram
phone LMs (tens of thousands of states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from uasr.graph.graph import Graph

Tensor = torch.Tensor
NEG_INF = -math.inf


class OutArcs:
    """Out-arcs per state padded to the largest out-degree (pad: dst = S, weight = -inf)."""

    def __init__(self, graph: Graph):
        S, A = graph.num_states, graph.num_arcs
        src = graph.src
        deg = torch.bincount(src, minlength=S)
        D = max(int(deg.max()) if A else 1, 1)
        order = torch.argsort(src, stable=True)
        start = torch.cumsum(deg, 0) - deg
        slot = torch.arange(A, device=src.device) - start[src[order]]
        self.dst = torch.full((S + 1, D), S, dtype=torch.int64, device=src.device)
        self.arc = torch.full((S + 1, D), A, dtype=torch.int64, device=src.device)
        self.dst[src[order], slot] = graph.dst[order]
        self.arc[src[order], slot] = order
        self.S, self.A, self.D = S, A, D


def out_arcs(graph: Graph) -> OutArcs:
    key = ("out_arcs", graph.device)
    if key not in graph._cache:
        graph._cache[key] = OutArcs(graph)
    return graph._cache[key]


@dataclass
class PrunedContext:
    act: Tensor  # [B, T, k] kept states
    la: Tensor  # [B, T, k] their log forward scores
    Ek: Tensor  # [B, T, k] their emissions


def _padded(x: Tensor, fill: float) -> Tensor:
    return torch.cat([x, x.new_full((1,), fill)])


def _weights(graph: Graph, weights, init, final):
    """The graph's log-weights unless overridden (CUDA-graph capture passes static copies)."""
    return (graph.weights if weights is None else weights).detach(), \
        (graph.init if init is None else init).detach(), \
        (graph.final if final is None else final).detach()


def pruned_forward(emissions: Tensor, lengths: Tensor, graph: Graph, k: int,
                   weights: Tensor | None = None, init: Tensor | None = None,
                   final: Tensor | None = None):
    weights, init, final = _weights(graph, weights, init, final)
    B, T, V = emissions.shape
    S = graph.num_states
    dev, dtype = emissions.device, emissions.dtype
    k = min(k, S)
    O = out_arcs(graph)
    w_pad = _padded(weights.to(dtype), NEG_INF)  # arc A = padding
    lab_pad = torch.cat([graph.labels, graph.labels.new_zeros(1)])
    rows = torch.arange(B, device=dev).unsqueeze(1)

    act = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    la = torch.empty(B, T, k, dtype=dtype, device=dev)
    Ek = torch.empty(B, T, k, dtype=dtype, device=dev)
    e0 = emissions[:, 0, graph.labels]
    v, i = torch.topk(init.to(dtype) + e0, k, dim=1)
    # a slot holding -inf points at the dummy state S (never at a real state: no duplicates)
    act[:, 0], la[:, 0], Ek[:, 0] = torch.where(torch.isfinite(v), i, S), v, e0.gather(1, i)

    # Per-state out-arc tables for this call: weights and successor labels.
    out_w = w_pad[O.arc]  # [S + 1, D]
    out_lab = lab_pad[O.dst]  # [S + 1, D]
    # Recombination buffers. With include_self=False every entry that a frame reads was
    # written in that frame, so the buffers never need resetting.
    m = torch.empty((B, S + 1), dtype=dtype, device=dev)
    ssum = torch.empty((B, S + 1), dtype=dtype, device=dev)
    first = torch.empty((B, S + 1), dtype=torch.int64, device=dev)
    cand_pos = torch.arange(k * O.D, device=dev).expand(B, -1)
    for t in range(1, T):
        a_prev, l_prev = act[:, t - 1], la[:, t - 1]
        flat = a_prev.reshape(-1)
        cd = O.dst.index_select(0, flat).view(B, -1)  # [B, k*D] successor states
        cs = (l_prev.unsqueeze(-1) + out_w.index_select(0, flat).view(B, k, -1)).view(B, -1)
        m.scatter_reduce_(1, cd, cs, reduce="amax", include_self=False)
        mg = m.gather(1, cd)
        ex = torch.exp(cs - torch.where(torch.isfinite(mg), mg, torch.zeros_like(mg)))
        ssum.scatter_reduce_(1, cd, ex, reduce="sum", include_self=False)
        # one representative candidate per successor (any writer wins; all carry the same sum)
        first.scatter_(1, cd, cand_pos)
        keep = (first.gather(1, cd) == cand_pos) & (cd < S) & torch.isfinite(mg)
        lse = mg + torch.log(ssum.gather(1, cd))
        et = emissions[:, t].gather(1, out_lab.index_select(0, flat).view(B, -1))
        score = torch.where(keep, lse + et, torch.full_like(lse, NEG_INF))
        v, j = torch.topk(score, k, dim=1)
        active = (t < lengths).unsqueeze(1)
        nxt = torch.where(torch.isfinite(v), cd.gather(1, j), S)
        act[:, t] = torch.where(active, nxt, a_prev)
        la[:, t] = torch.where(active, v, l_prev)
        Ek[:, t] = torch.where(active, et.gather(1, j), Ek[:, t - 1])
    last = rows.squeeze(1), lengths - 1
    fin = la[last] + _padded(final.to(dtype), NEG_INF)[act[last]]
    total = torch.logsumexp(fin, dim=1)
    return total, PrunedContext(act, la, Ek)


def pruned_backward(ctx: PrunedContext, total: Tensor, g: Tensor, lengths: Tensor, graph: Graph,
                    V: int, need_weights: bool, weights: Tensor | None = None,
                    final: Tensor | None = None):
    """Returns ``(grad_emissions [B, T, V], arc_grad, init_grad, final_grad)``."""
    weights, _, final = _weights(graph, weights, graph.init, final)
    act, la, Ek = ctx.act, ctx.la, ctx.Ek
    B, T, k = act.shape
    S, dev, dtype = graph.num_states, act.device, la.dtype
    O = out_arcs(graph)
    w_pad = _padded(weights.to(dtype), NEG_INF)
    final = _padded(final.to(dtype), NEG_INF)
    lab = torch.cat([graph.labels, graph.labels.new_zeros(1)])
    Z, gg = total.unsqueeze(1), g.unsqueeze(1)
    grad_em = torch.zeros(B, T, V, dtype=dtype, device=dev)
    arc_grad = torch.zeros(O.A + 1, dtype=dtype, device=dev) if need_weights else None
    init_grad = torch.zeros(S + 1, dtype=dtype, device=dev) if need_weights else None
    final_grad = torch.zeros(S + 1, dtype=dtype, device=dev) if need_weights else None
    out_w = w_pad[O.arc]
    buf = torch.full((B, S + 1), NEG_INF, dtype=dtype, device=dev)
    beta = final[act[:, T - 1]]
    for t in range(T - 1, -1, -1):
        active = (t < lengths).unsqueeze(1)
        starts = (t == lengths - 1).unsqueeze(1)
        beta = torch.where(starts, final[act[:, t]], beta)
        post = torch.where(active, torch.exp(la[:, t] + beta - Z) * gg, torch.zeros_like(beta))
        grad_em[:, t].scatter_add_(1, lab[act[:, t]], post)
        if need_weights:
            # (no boolean-mask indexing: keeps the loop free of host syncs, so it can be
            # captured as a CUDA graph)
            final_grad.index_add_(0, act[:, t].reshape(-1),
                                  torch.where(starts, post, torch.zeros_like(post)).reshape(-1))
            if t == 0:
                init_grad.index_add_(0, act[:, 0].reshape(-1), post.reshape(-1))
        if t == 0:
            break
        buf.scatter_(1, act[:, t], beta + Ek[:, t])
        buf[:, S] = NEG_INF
        flat = act[:, t - 1].reshape(-1)
        arcs = O.arc.index_select(0, flat).view(B, k, -1)  # [B, k, D]
        x = out_w.index_select(0, flat).view_as(arcs) \
            + buf.gather(1, O.dst.index_select(0, flat).view(B, -1)).view_as(arcs)
        buf.scatter_(1, act[:, t], NEG_INF)
        if need_weights:
            xi = torch.exp(la[:, t - 1].unsqueeze(-1) + x - Z.unsqueeze(-1)) * gg.unsqueeze(-1)
            xi = torch.where(active.unsqueeze(-1), xi, torch.zeros_like(xi))
            arc_grad.index_add_(0, arcs.reshape(-1), xi.reshape(-1))
        nb = torch.logsumexp(x, dim=2)
        beta = torch.where(active, nb, beta)
    if not need_weights:
        return grad_em, None, None, None
    return grad_em, arc_grad[:-1], init_grad[:-1], final_grad[:-1]


def pruned_viterbi(emissions: Tensor, lengths: Tensor, graph: Graph, k: int):
    """Tropical-semiring version of :func:`pruned_forward` with back-pointers.

    Returns ``(scores [B], act [B, T, k], slot [B, T, k], arc [B, T, k], best_slot [B])``:
    ``slot[b, t, i]`` is the frame ``t - 1`` slot that state ``act[b, t, i]`` came from, and
    ``arc`` the arc taken.
    """
    B, T, V = emissions.shape
    S = graph.num_states
    dev, dtype = emissions.device, emissions.dtype
    k = min(k, S)
    O = out_arcs(graph)
    w_pad = _padded(graph.weights.detach().to(dtype), NEG_INF)
    lab_pad = torch.cat([graph.labels, graph.labels.new_zeros(1)])
    out_w, out_lab = w_pad[O.arc], lab_pad[O.dst]
    act = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    la = torch.empty(B, T, k, dtype=dtype, device=dev)
    slot = torch.zeros(B, T, k, dtype=torch.int64, device=dev)
    arc = torch.full((B, T, k), O.A, dtype=torch.int64, device=dev)
    v, i = torch.topk(graph.init.detach().to(dtype) + emissions[:, 0, graph.labels], k, dim=1)
    act[:, 0], la[:, 0] = torch.where(torch.isfinite(v), i, S), v
    m = torch.empty((B, S + 1), dtype=dtype, device=dev)
    first = torch.empty((B, S + 1), dtype=torch.int64, device=dev)
    cand_pos = torch.arange(k * O.D, device=dev).expand(B, -1)
    for t in range(1, T):
        flat = act[:, t - 1].reshape(-1)
        cd = O.dst.index_select(0, flat).view(B, -1)
        cs = (la[:, t - 1].unsqueeze(-1) + out_w.index_select(0, flat).view(B, k, -1)).view(B, -1)
        m.scatter_reduce_(1, cd, cs, reduce="amax", include_self=False)
        mg = m.gather(1, cd)
        best = (cs == mg) & torch.isfinite(cs) & (cd < S)
        cd_best = torch.where(best, cd, S)
        first.scatter_(1, cd_best, cand_pos)  # one argmax candidate per successor
        keep = best & (first.gather(1, cd_best) == cand_pos)
        score = torch.where(keep, mg + emissions[:, t].gather(
            1, out_lab.index_select(0, flat).view(B, -1)), torch.full_like(mg, NEG_INF))
        v, j = torch.topk(score, k, dim=1)
        active = (t < lengths).unsqueeze(1)
        act[:, t] = torch.where(active, torch.where(torch.isfinite(v), cd.gather(1, j), S),
                                act[:, t - 1])
        la[:, t] = torch.where(active, v, la[:, t - 1])
        slot[:, t] = torch.where(active, j // O.D, torch.arange(k, device=dev))
        arc[:, t] = torch.where(active, O.arc.index_select(0, flat).view(B, -1).gather(1, j), O.A)
    rows = torch.arange(B, device=dev)
    fin = la[rows, lengths - 1] + _padded(graph.final.detach().to(dtype), NEG_INF)[act[rows, lengths - 1]]
    scores, best_slot = fin.max(dim=1)
    return scores, act, slot, arc, best_slot
