"""Public algorithms: :func:`total_score` (log semiring, differentiable) and :func:`viterbi`."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from uasr.graph import cuda_graphs
from uasr.graph import forward_backward as fb
from uasr.graph.graph import Graph
from uasr.graph.pruned import pruned_backward, pruned_forward, pruned_viterbi
from uasr.graph.transitions import block_layout, choose_backend, make_transitions

Tensor = torch.Tensor
BACKENDS = ("auto", "dense", "block", "sparse", "triton")
NO_PATH = ("raise", "inf", "zero")


class NoPathError(ValueError):
    """An utterance has no complete path through its graph."""


def _check_inputs(emissions: Tensor, lengths: Tensor, graph: Graph) -> Tensor:
    if emissions.dim() != 3:
        raise ValueError(f"emissions must be [B, T, V], got shape {tuple(emissions.shape)}")
    if not emissions.is_floating_point():
        raise ValueError("emissions must be a floating-point tensor of log-scores")
    B, T, V = emissions.shape
    lengths = torch.as_tensor(lengths).to(torch.int64)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape [{B}], got {tuple(lengths.shape)}")
    # checked where the lengths live (no device sync for CPU lengths; one for CUDA lengths)
    if B and not (1 <= min(lo_hi := torch.stack(torch.aminmax(lengths)).tolist())
                  and lo_hi[1] <= T):
        bad = int(torch.nonzero((lengths < 1) | (lengths > T))[0])
        raise ValueError(f"lengths[{bad}] = {int(lengths[bad])} is outside [1, T={T}]")
    lengths = lengths.to(emissions.device)
    if "max_label" not in graph._cache:
        graph._cache["max_label"] = int(graph.labels.max()) if graph.num_states else -1
    if graph._cache["max_label"] >= V:
        raise ValueError(f"graph uses label {graph._cache['max_label']} but emissions have V={V}")
    if graph.is_batch and graph.num_graphs != B:
        raise ValueError(f"packed graph holds {graph.num_graphs} graphs for a batch of {B}")
    if graph.device != emissions.device:
        raise ValueError(f"graph is on {graph.device}, emissions on {emissions.device}: "
                         f"use graph.to(emissions.device)")
    return lengths


def _mask_padding(emissions: Tensor, lengths: Tensor) -> Tensor:
    """Zero the frames beyond each length (they are ignored; this keeps NaN padding out)."""
    T = emissions.shape[1]
    valid = torch.arange(T, device=emissions.device).unsqueeze(0) < lengths.unsqueeze(1)
    return torch.where(valid.unsqueeze(-1), emissions, torch.zeros((), dtype=emissions.dtype,
                                                                   device=emissions.device))


def _all_finite(x: Tensor) -> bool:
    """One reduction and one host sync: a sum is finite iff every term is (log-scores are far
    from float overflow); ``isfinite().all()`` costs several kernels on CUDA."""
    return math.isfinite(float(x.sum()))


class _TotalScore(torch.autograd.Function):
    @staticmethod
    def forward(ctx, emissions, weights, init, final, graph, lengths, backend, beam, no_path):
        B, T, V = emissions.shape
        raw = emissions.detach()
        # the fused kernels never read padding frames; every other path needs them zeroed
        em = raw if backend == "triton" else _mask_padding(raw, lengths)
        state = {"backend": backend}
        all_finite = None  # None: not yet checked
        if beam is not None:
            # --- issue 4: fused Triton pruned kernels (float32 CUDA; UASR_TRITON_PRUNED=0
            # disables; any failure warns once and falls back to the torch path below)
            fused = None
            if em.is_cuda or os.environ.get("UASR_TRITON_PRUNED", "").lower() == "force":
                from uasr.graph import triton_pruned
                fused = triton_pruned.maybe_forward(em, lengths, graph, beam)
            if fused is not None:
                total, pctx = fused
                state["pruned_triton"] = True
            # --- end issue 4
            elif cuda_graphs.enabled(em):
                key = ("pruned_fwd", tuple(em.shape), em.dtype, beam)
                total, pctx = cuda_graphs.run_captured(
                    graph._cache, key, lambda e, n, w, i, f: pruned_forward(e, n, graph, beam, w, i, f),
                    (em, lengths, weights, init, final))
            else:
                total, pctx = pruned_forward(em, lengths, graph, beam)
            state["pruned"] = pctx
        elif backend in ("dense", "block", "triton"):
            if backend == "triton":
                from uasr.graph.triton_kernels import triton_forward
                total, sctx, trans = triton_forward(em, lengths, graph)
            else:
                trans = make_transitions(graph, backend, em.dtype)
                total, sctx = fb.scaled_forward(em, lengths, graph, trans)
            state["scaled"], state["trans"] = sctx, trans
            all_finite = _all_finite(total)
            if not all_finite:
                all_finite = None  # unknown again after the fallback
                dead = ~torch.isfinite(total)
                # Probability space underflowed or there is truly no path: redo those
                # utterances exactly in log space.
                state["log_rows"] = idx = torch.nonzero(dead).squeeze(1)
                sub_len = lengths[idx]
                layout = fb.LogLayout(graph, sub_len)
                E = layout.gather_emissions(_mask_padding(raw[idx], sub_len), graph.labels)
                alpha, _ = fb.log_forward(E, sub_len, graph, layout)
                total = total.clone()
                total[idx] = fb.log_total(alpha, sub_len, graph, layout, idx.numel())
                state["log"] = (alpha, E, layout)
        else:
            def log_pass(e, n, w, i, f):
                layout = fb.LogLayout(graph, n)
                E = layout.gather_emissions(e, graph.labels)
                alpha, _ = fb.log_forward(E, n, graph, layout, weights=w, init=i)
                return fb.log_total(alpha, n, graph, layout, B, final=f), alpha, E

            args = (em, lengths, weights, init, final)
            if cuda_graphs.enabled(em):
                key = ("log_fwd", tuple(em.shape), em.dtype)
                total, alpha, E = cuda_graphs.run_captured(graph._cache, key, log_pass, args)
            else:
                total, alpha, E = log_pass(*args)
            state["log"] = (alpha, E, fb.LogLayout(graph, lengths))
            state["log_rows"] = None
        if all_finite is None:
            all_finite = _all_finite(total)
        state["all_finite"] = all_finite
        if no_path == "raise" and not all_finite:
            i = int(torch.nonzero(~torch.isfinite(total))[0])
            raise NoPathError(
                f"utterance {i} (batch index) has no complete path through the graph in "
                f"{int(lengths[i])} frames (e.g. too few frames for its labels); pass "
                f"no_path='zero' or 'inf' to skip such utterances instead")
        ctx.state, ctx.graph, ctx.V = state, graph, V
        # the triton context reads the caller's emissions (no masked copy): saving them lets
        # autograd refuse a backward after they were modified in place
        ctx.save_for_backward(lengths, total, *([emissions] if em is raw else []))
        if no_path == "zero" and not all_finite:
            return torch.where(torch.isfinite(total), total, torch.zeros_like(total))
        return total

    @staticmethod
    def backward(ctx, g):
        lengths, total = ctx.saved_tensors[:2]
        graph, state, V = ctx.graph, ctx.state, ctx.V
        need_w = any(ctx.needs_input_grad[1:4])
        g = g.to(total.dtype)
        Zs = total
        if not state["all_finite"]:  # utterances without a path get no gradient
            ok = torch.isfinite(total)
            g = torch.where(ok, g, torch.zeros_like(g))
            Zs = torch.where(ok, total, torch.zeros_like(total))
        B = total.numel()
        grads_w = [None, None, None]
        if "pruned" in state:
            pctx = state["pruned"]
            # --- issue 4: fused Triton backward (emission gradient only; the graph-weight
            # gradients come from the torch backward over the same kept lattice)
            grad_em = None
            if state.get("pruned_triton") and not need_w:
                from uasr.graph import triton_pruned
                grad_em = triton_pruned.maybe_backward(pctx, Zs, g, lengths, graph, V)
            if grad_em is not None:
                gw = [None, None, None]
            # --- end issue 4
            elif cuda_graphs.enabled(Zs):
                key = ("pruned_bwd", tuple(pctx.act.shape), Zs.dtype, V, need_w)
                grad_em, *gw = cuda_graphs.run_captured(
                    graph._cache, key,
                    lambda act, la, Ek, z, gg, n, w, f: pruned_backward(
                        type(pctx)(act, la, Ek), z, gg, n, graph, V, need_w, w, f),
                    (pctx.act, pctx.la, pctx.Ek, Zs, g, lengths, graph.weights, graph.final))
            else:
                grad_em, *gw = pruned_backward(pctx, Zs, g, lengths, graph, V, need_w)
            grads_w = gw
        else:
            grad_em = None
            if "scaled" in state:
                trans = state["trans"]
                g_sc = g
                if state.get("log_rows") is not None:  # those rows come from log space
                    g_sc = g.index_fill(0, state["log_rows"], 0.0)
                if state["backend"] == "triton":
                    from uasr.graph.triton_kernels import triton_backward
                    grad_em, *gw = triton_backward(state["scaled"], g_sc, trans, need_w,
                                                   num_labels=V)
                else:
                    gam, *gw = fb.scaled_backward(state["scaled"], g_sc, trans, need_w)
                    grad_em = gam.new_zeros(B, gam.shape[1], V).index_add_(2, graph.labels, gam)
                grads_w = gw
            if "log" in state:
                alpha, E, layout = state["log"]
                rows = state["log_rows"]
                sub = slice(None) if rows is None else rows
                if rows is None and cuda_graphs.enabled(E):
                    key = ("log_bwd", tuple(E.shape), E.dtype, need_w)
                    gam, *gw = cuda_graphs.run_captured(
                        graph._cache, key,
                        lambda a, e, z, gg, n, w, f: fb.log_backward(
                            a, e, z, gg, graph, fb.LogLayout(graph, n), need_w, w, f),
                        (alpha, E, Zs, g, lengths, graph.weights, graph.final))
                else:
                    gam, *gw = fb.log_backward(alpha, E, Zs[sub], g[sub], graph, layout, need_w)
                if layout.packed:
                    flat = torch.zeros(B * E.shape[1], V, dtype=gam.dtype, device=gam.device)
                    T = E.shape[1]
                    owner = layout.owner
                    # gam: [1, T, S] -> rows (owner, t), columns labels
                    idx = (owner.unsqueeze(0) * T + torch.arange(T, device=gam.device).unsqueeze(1))
                    flat.index_put_((idx.reshape(-1), graph.labels.expand(T, -1).reshape(-1)),
                                    gam[0].reshape(-1), accumulate=True)
                    g_log = flat.view(B, T, V)
                else:
                    g_log = gam.new_zeros(gam.shape[0], gam.shape[1], V).index_add_(2, graph.labels, gam)
                if grad_em is None:
                    grad_em = g_log if rows is None else g_log.new_zeros(B, *g_log.shape[1:]).index_copy_(0, rows, g_log)
                else:
                    grad_em.index_add_(0, rows, g_log)
                if need_w:
                    grads_w = gw if grads_w[0] is None else [a + b for a, b in zip(grads_w, gw)]
        out_w = [gw if (gw is not None and need) else None
                 for gw, need in zip(grads_w, ctx.needs_input_grad[1:4])]
        return (grad_em, *out_w, None, None, None, None, None)


def total_score(
    emissions: Tensor,
    lengths: Tensor,
    graph: Graph,
    *,
    beam: Optional[int] = None,
    backend: str = "auto",
    dtype: Optional[torch.dtype] = None,
    no_path: str = "raise",
) -> Tensor:
    """Log-semiring total score of every utterance: ``log sum_paths exp(path score)``.

    Args:
        emissions: ``[B, T, V]`` log-scores; frame ``t`` of utterance ``b`` in a state with
            label ``v`` adds ``emissions[b, t, v]``. Frames at or beyond ``lengths[b]`` are
            ignored (their gradient is 0).
        lengths: ``[B]`` number of valid frames, each in ``[1, T]``.
        graph: one :class:`Graph` shared by the batch, or ``Graph.batch([...])`` with one
            graph per utterance, or a :class:`~uasr.graph.backoff.BackoffGraph`
            (``expand="backoff"``: backends ``auto``/``sparse``, no ``beam``, no weight
            gradients).
        beam: keep only the ``beam`` best states per frame (see :mod:`uasr.graph.pruned`).
        backend: ``auto`` (dense for small graphs, block for structured large ones, sparse
            otherwise, triton on CUDA), or one of ``dense``, ``block``, ``sparse``, ``triton``.
        dtype: compute dtype (default: the emissions' dtype; pass ``torch.float64`` for
            extra precision). The result has the emissions' dtype.
        no_path: what to do with an utterance that has no complete path: ``"raise"`` (a
            :class:`NoPathError` naming its batch index), ``"inf"`` (return ``-inf``, zero
            gradient) or ``"zero"`` (return 0, zero gradient: it drops out of a summed loss).

    Returns:
        ``[B]`` totals, differentiable w.r.t. ``emissions`` and the graph's ``weights``,
        ``init`` and ``final`` (when those require grad).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if no_path not in NO_PATH:
        raise ValueError(f"no_path must be one of {NO_PATH}, got {no_path!r}")
    if beam is not None and beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    from uasr.graph.backoff import BackoffGraph, backoff_total_score  # (imports this module)
    if isinstance(graph, BackoffGraph):
        return backoff_total_score(emissions, lengths, graph, beam=beam, backend=backend,
                                   dtype=dtype, no_path=no_path)
    lengths = _check_inputs(emissions, lengths, graph)
    out_dtype = emissions.dtype
    work = emissions if dtype is None else emissions.to(dtype)
    if backend == "auto":
        backend = choose_backend(graph)
        if backend in ("dense", "block") and work.is_cuda:
            from uasr.graph.triton_kernels import triton_supports
            if triton_supports(graph, work):
                backend = "triton"
    elif backend in ("dense", "block") and graph.is_batch:
        raise ValueError(f"backend {backend!r} needs a shared graph; packed batches use 'sparse'")
    total = _TotalScore.apply(work, graph.weights, graph.init, graph.final, graph, lengths,
                              backend, beam, no_path)
    return total.to(out_dtype)


# ---------------------------------------------------------------------------- Viterbi
@dataclass
class ViterbiResult:
    """Best path per utterance.

    Attributes:
        scores: ``[B]`` best path scores (``-inf`` where there is no path).
        states: per utterance, ``[len_b]`` graph states of the best path.
        alignments: per utterance, ``[len_b]`` label of each frame.
        labels: per utterance, the output token sequence (a new token starts on every
            ``new_token`` arc or initial state, except in ``graph.blank`` states).
    """

    scores: Tensor
    states: list[Tensor]
    alignments: list[Tensor]
    labels: list[list[int]]


def viterbi(emissions: Tensor, lengths: Tensor, graph: Graph, *,
            beam: Optional[int] = None) -> ViterbiResult:
    """Best path (tropical semiring) through ``graph`` for every utterance.

    ``beam=k`` keeps the k best states per frame (for 4-gram-size graphs); the result is then
    the best path among the kept ones (exact when k >= number of states).
    """
    from uasr.graph.backoff import BackoffGraph, backoff_viterbi  # (imports this module)
    if isinstance(graph, BackoffGraph):
        return backoff_viterbi(emissions, lengths, graph, beam=beam)
    lengths = _check_inputs(emissions, lengths, graph)
    if beam is not None and graph.is_batch:
        raise ValueError("viterbi(beam=...) needs a shared graph")
    B, T, V = emissions.shape
    with torch.no_grad():
        em = _mask_padding(emissions.detach(), lengths)
        if beam is not None:
            scores, paths = _pruned_paths(em, lengths, graph, beam)
        else:
            scores, paths = _exact_paths(em, lengths, graph)
    ok, states, arcs = paths
    L = lengths.cpu().numpy()
    labels_np = graph.labels.cpu().numpy()
    lab = labels_np[states]  # [B, T]
    blank = -1 if graph.blank is None else graph.blank
    # a token starts where the path enters a new token (or leaves a blank), blanks emit none
    starts = np.ones_like(lab, dtype=bool)
    starts[:, 1:] = graph.new_token.cpu().numpy()[arcs[:, :-1]] | (lab[:, :-1] == blank)
    emit = starts & (lab != blank)
    out_states, aligns, toks = [], [], []
    for b in range(B):
        n = int(L[b]) if ok[b] else 0
        out_states.append(torch.from_numpy(states[b, :n].copy()))
        aligns.append(torch.from_numpy(lab[b, :n].astype(np.int64)))
        toks.append(lab[b, :n][emit[b, :n]].tolist())
    return ViterbiResult(scores.to(emissions.dtype), out_states, aligns, toks)


def _to_host(scores: Tensor, states: Tensor, arcs: Tensor):
    """A fused kernel's ``(scores, states [B, T], arcs [B, T])`` in the form of
    :func:`_trace_back`'s callers: ``(scores, (ok, states, arcs))`` with numpy paths."""
    return scores, (torch.isfinite(scores).cpu().numpy(), states.cpu().numpy(),
                    arcs.cpu().numpy())


def _exact_paths(em: Tensor, lengths: Tensor, graph: Graph):
    """``(scores [B], (ok [B], states [B, T], arcs [B, T]))`` of the best paths (see
    :func:`_trace_back`)."""
    if em.is_cuda or os.environ.get("UASR_TRITON_VITERBI") == "force":
        # issue 4: fused kernels for the forward and the trace-back (None: not applicable)
        from uasr.graph.triton_kernels import maybe_best_paths
        fused = maybe_best_paths(em, lengths, graph)
        if fused is not None:
            return _to_host(*fused)
    B = em.shape[0]
    layout = fb.LogLayout(graph, lengths)
    E = layout.gather_emissions(em, graph.labels)
    if not layout.packed and choose_backend(graph) == "block":
        delta, bp = fb.block_tropical_forward(E, lengths, graph, block_layout(graph))
    else:
        delta, bp = fb.log_forward(E, lengths, graph, layout, semiring="tropical")
    last = delta[:, -1] + graph.final.detach().to(delta.dtype)  # frozen after each length
    if layout.packed:
        scores = torch.full((B,), -math.inf, dtype=last.dtype, device=last.device)
        scores.scatter_reduce_(0, layout.owner, last[0], reduce="amax", include_self=True)
    else:
        scores = last.max(dim=1).values
    return scores, _trace_back(bp, last, scores, lengths, graph, layout)


def _trace_back(bp: Tensor, last: Tensor, scores: Tensor, lengths: Tensor, graph: Graph,
                layout: "fb.LogLayout") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow the back-pointer arcs from each utterance's best final state, all utterances at
    once (one numpy gather per frame: a Python step per element dominated decoding time).

    Returns ``ok [B]`` (the utterance has a path), ``states [B, T]`` and ``arcs [B, T]``
    (``arcs[b, t - 1]`` enters frame ``t``); entries at or beyond a length are 0.
    """
    B, T = len(lengths), bp.shape[1]
    bp_np, last_np = bp.cpu().numpy(), last.cpu().numpy()
    src = graph.src.cpu().numpy()
    ok = np.isfinite(scores.cpu().numpy())
    L = lengths.cpu().numpy()
    if layout.packed:
        off = graph.batch_offsets.cpu().numpy()
        cur = np.asarray([off[b] + int(last_np[0, off[b]:off[b + 1]].argmax()) for b in range(B)])
        rows = np.zeros(B, dtype=np.int64)
    else:
        cur, rows = last_np.argmax(1), np.arange(B)
    states = np.zeros((B, T), dtype=np.int64)
    arcs = np.zeros((B, T), dtype=np.int64)
    states[ok, L[ok] - 1] = cur[ok]
    for t in range(T - 1, 0, -1):
        act = ok & (t < L)
        a = bp_np[rows, t, cur]
        arcs[act, t - 1] = a[act]
        cur = np.where(act, src[np.where(act, a, 0)], cur)
        states[act, t - 1] = cur[act]
    return ok, states, arcs


def _pruned_paths(em: Tensor, lengths: Tensor, graph: Graph, beam: int):
    """As :func:`_exact_paths`, through the kept slots of the pruned lattice."""
    if em.is_cuda or os.environ.get("UASR_TRITON_PRUNED") == "force":
        from uasr.graph.triton_pruned import maybe_viterbi  # issue 4: fused kernels
        fused = maybe_viterbi(em, lengths, graph, beam)
        if fused is not None:
            return _to_host(*fused)
    scores, act, slot, arc, best = pruned_viterbi(em, lengths, graph, beam)
    act, slot, arc = act.cpu().numpy(), slot.cpu().numpy(), arc.cpu().numpy()
    B, T = act.shape[:2]
    ok = np.isfinite(scores.cpu().numpy())
    L = lengths.cpu().numpy()
    rows, i = np.arange(B), best.cpu().numpy().astype(np.int64)
    states = np.zeros((B, T), dtype=np.int64)
    arcs = np.zeros((B, T), dtype=np.int64)
    for t in range(T - 1, -1, -1):
        live = ok & (t < L)
        states[live, t] = act[rows, t, i][live]
        if t > 0:
            arcs[live, t - 1] = arc[rows, t, i][live]
            i = np.where(live, slot[rows, t, i], i)
    return scores, (ok, states, arcs)
