"""Fused forward-backward kernels (Triton) for a shared graph on CUDA; see DESIGN.md §3.

The math is that of :func:`uasr.graph.forward_backward.scaled_forward` /
:func:`scaled_backward` (probability space, per-frame shift of the emissions, per-frame max
normaliser), but each pass over all ``T`` frames is ONE kernel launch whose programs (CTAs)
loop over the frames inside: the torch version is launch-bound.

Two kernel families:

- *dense* (``S <= 256``): one program per utterance; ``W`` lives in registers for the whole
  launch; the state vector moves between frames through a register layout conversion.
- *block* (larger graphs whose arcs form dense bipartite blocks, e.g. a full trigram x loop):
  the blocks are cut into groups of ``KB`` and ``P`` programs share an utterance, each
  owning every P-th group. Per frame a program gathers the previous frame from global
  memory, writes its states' new values *unnormalised* plus their partial max (the
  normaliser ``c_t`` is the max over the P partial maxima, read at the next frame), then
  meets the utterance's other programs at a barrier (a counter in global memory). With one
  group per program its weights stay in registers for the whole launch; otherwise they
  stream from L2 every frame. The per-frame chain is latency-bound, so splitting an
  utterance over several SMs shortens it. The backward runs the same kernel shape on the
  *reversed* graph's block layout (``W^T``), so every state is written exactly once per
  frame: no atomics. The first frame of each pass and the total are a few torch ops.

Viterbi (``viterbi()`` on CUDA, dense and block graphs): one launch does the max-product
recursion over all frames in log space (same program layouts, no rescaling) and writes each
frame's back-pointer arcs; the trace-back stays on the host.

Frames ``t >= length`` are skipped entirely (the per-utterance loop bound is its length).
Arc-weight gradients are one torch contraction over all frames after the kernel.
Only float32 is supported (``triton_supports`` says False for anything else).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import torch

from uasr.graph.forward_backward import best_arcs
from uasr.graph.graph import Graph
from uasr.graph.transitions import (BlockTransitions, DenseTransitions, _max_finite, in_sets_of,
                                    block_layout)

try:  # triton is optional: without it the torch backends are used
    import triton
    import triton.language as tl
    HAVE_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    HAVE_TRITON = False

Tensor = torch.Tensor
DENSE_MAX_STATES = 256  # W in registers up to 256 x 256 (16 warps)
BLOCK_MAX_IN = 128  # widest block input set the block kernel's tile takes
BLOCK_OUT = 64  # blocks with more outputs are split into sub-blocks of this many
K_ALIGN = 16  # block count padded to a multiple of the largest KB candidate


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _next_pow2(n: int, lo: int = 16) -> int:
    return max(lo, 1 << max(0, int(n) - 1).bit_length())


# ============================================================================ kernels
if HAVE_TRITON:

    @triton.jit
    def _dense_fwd_kernel(em_ptr, sh_ptr, lab_ptr, wt_ptr, init_ptr, fin_ptr, len_ptr,
                          a_ptr, c_ptr, out_ptr, cst_ptr, T, V, S, BS: tl.constexpr):
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        r = tl.arange(0, BS)
        k = tl.arange(0, BS)
        rm = r < S
        # wt[s, s'] = W[s', s], zero-padded to BS x BS in memory: an unmasked contiguous load
        # gets 16-byte vectors along axis 1, so the axis-1 reduction stays inside a warp.
        wt = tl.load(wt_ptr + r[:, None] * BS + k[None, :])
        lab = tl.load(lab_ptr + r, mask=rm, other=0)
        em_b = em_ptr + b * T * V
        sh_b = sh_ptr + b * T
        a_b = a_ptr + b * T * S
        c_b = c_ptr + b * T
        sh = tl.load(sh_b)
        e = tl.load(em_b + lab, mask=rm, other=float("-inf"))
        u = tl.load(init_ptr + r, mask=rm, other=0.0) * tl.exp(e - sh)
        c = tl.max(u, axis=0)
        c = tl.where(c > 0, c, 1.0)
        a = u / c
        tl.store(a_b + r, a, mask=rm)
        tl.store(c_b, c)
        logsum = sh + tl.log(c)
        # software prefetch: frame t+1's emissions are loaded while frame t is computed
        tn = tl.minimum(L * 0 + 1, T - 1)  # (a tensor even if T is specialised to 1)
        sh_n = tl.load(sh_b + tn)
        e_n = tl.load(em_b + tn * V + lab, mask=rm, other=float("-inf"))
        for t in range(1, L):
            sh = sh_n
            p = tl.exp(e_n - sh)
            tn = tl.minimum(t + 1, T - 1)
            sh_n = tl.load(sh_b + tn)
            e_n = tl.load(em_b + tn * V + lab, mask=rm, other=float("-inf"))
            u = tl.sum(wt * a[None, :], axis=1) * p
            c = tl.max(u, axis=0)
            c = tl.where(c > 0, c, 1.0)
            a = u / c
            tl.store(a_b + t * S + r, a, mask=rm)
            tl.store(c_b + t, c)
            logsum += sh + tl.log(c)
        fin = tl.sum(a * tl.load(fin_ptr + r, mask=rm, other=0.0), axis=0)
        # total = log(fin) + sum_t (shift_t + log c_t) + imax + fmax + (L - 1) * wmax
        tl.store(out_ptr + b, tl.log(fin) + logsum + tl.load(cst_ptr)
                 + (L - 1).to(tl.float32) * tl.load(cst_ptr + 1))

    @triton.jit
    def _dense_bwd_kernel(em_ptr, sh_ptr, lab_ptr, w_ptr, fin_ptr, len_ptr, a_ptr, c_ptr, g_ptr,
                          gam_ptr, y_ptr, T, V, S, BS: tl.constexpr, NEED_Y: tl.constexpr,
                          BY_LABEL: tl.constexpr):
        # BY_LABEL 0: gam is [B, T, S] (gamma * g); 1: gam is the zeroed emission gradient
        # [B, T, V] and each state's share is stored at its label (labels unique per state);
        # 2: the same with atomic adds (states share labels).
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        g = tl.load(g_ptr + b)
        r = tl.arange(0, BS)
        k = tl.arange(0, BS)
        rm = r < S
        w = tl.load(w_ptr + r[:, None] * BS + k[None, :])  # W[s', s], padded as in the forward
        lab = tl.load(lab_ptr + r, mask=rm, other=0)
        em_b = em_ptr + b * T * V
        sh_b = sh_ptr + b * T
        a_b = a_ptr + b * T * S
        c_b = c_ptr + b * T
        beta = tl.load(fin_ptr + r, mask=rm, other=0.0)
        tn = L - 1
        a_n = tl.load(a_b + tn * S + r, mask=rm, other=0.0)
        sh_n = tl.load(sh_b + tn)
        e_n = tl.load(em_b + tn * V + lab, mask=rm, other=float("-inf"))
        for i in range(0, L):
            t = L - 1 - i
            a = a_n
            p = tl.exp(e_n - sh_n)
            tn = tl.maximum(t - 1, 0)  # prefetch frame t-1 (independent of beta)
            a_n = tl.load(a_b + tn * S + r, mask=rm, other=0.0)
            sh_n = tl.load(sh_b + tn)
            e_n = tl.load(em_b + tn * V + lab, mask=rm, other=float("-inf"))
            ab = a * beta
            D = tl.sum(ab, axis=0)
            D = tl.where(D > 0, D, 1.0)
            if BY_LABEL == 0:
                tl.store(gam_ptr + (b * T + t) * S + r, ab * (g / D), mask=rm)
            elif BY_LABEL == 1:
                tl.store(gam_ptr + (b * T + t) * V + lab, ab * (g / D), mask=rm)
            else:
                tl.atomic_add(gam_ptr + (b * T + t) * V + lab, ab * (g / D), mask=rm,
                              sem="relaxed")
            v = p * beta
            if NEED_Y:
                ct = tl.load(c_b + t)
                tl.store(y_ptr + (b * T + t) * S + r, v * (g / (ct * D)), mask=rm)
            nb = tl.sum(w * v[None, :], axis=1)
            d = tl.max(nb, axis=0)
            d = tl.where(d > 0, d, 1.0)
            beta = nb / d

    @triton.jit
    def _dense_viterbi_kernel(em_ptr, lab_ptr, lw_ptr, arc_ptr, init_ptr, len_ptr, bp_ptr,
                              last_ptr, T, V, S, BS: tl.constexpr):
        # delta_t[s] = max_s' (delta_{t-1}[s'] + lw[s, s']) + e_t[lab[s]] in log space (no
        # rescaling needed); bp[t, s] = the arc of the best s'; last = delta at frame L-1.
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        r = tl.arange(0, BS)
        k = tl.arange(0, BS)
        rm = r < S
        lw = tl.load(lw_ptr + r[:, None] * BS + k[None, :])  # -inf where there is no arc
        lab = tl.load(lab_ptr + r, mask=rm, other=0)
        em_b = em_ptr + b * T * V
        d = tl.load(init_ptr + r, mask=rm, other=float("-inf")) \
            + tl.load(em_b + lab, mask=rm, other=float("-inf"))
        for t in range(1, L):
            e = tl.load(em_b + t * V + lab, mask=rm, other=float("-inf"))
            cand = lw + d[None, :]
            best, j = tl.max(cand, axis=1, return_indices=True)
            arc = tl.load(arc_ptr + r * BS + j, mask=rm, other=-1)
            tl.store(bp_ptr + (b * T + t) * S + r, tl.where(best > float("-inf"), arc, -1),
                     mask=rm)
            d = best + e
        tl.store(last_ptr + b * S + r, d, mask=rm)

    @triton.jit
    def _utterance_sync(cnt_ptr, target):
        """Barrier of the P programs of one utterance: each adds 1 to the utterance's counter,
        then waits until it reaches ``target`` (P x frames done in this launch). Scalar
        atomics run in one thread per program; ``bar.sync`` orders the other threads' global
        stores before the release and their loads after the acquire (the cooperative-groups
        grid-sync pattern). Needs all P programs co-resident: see ``_block_launch``."""
        tl.debug_barrier()
        tl.atomic_add(cnt_ptr, 1, sem="release", scope="gpu")
        seen = tl.atomic_add(cnt_ptr, 0, sem="acquire", scope="gpu")
        while seen < target:
            seen = tl.atomic_add(cnt_ptr, 0, sem="acquire", scope="gpu")
        tl.debug_barrier()

    @triton.jit
    def step_sync(cnt_ptr, target, SYNC: tl.constexpr):
        """Between two steps: ``_utterance_sync`` when several programs share the utterance
        (``SYNC``), else a CTA barrier (the program's own global writes become visible to
        all its threads)."""
        if SYNC:
            _utterance_sync(cnt_ptr, target)
        else:
            tl.debug_barrier()

    @triton.jit
    def _block_tile(src_ptr, dst_ptr, wt_ptr, loop_ptr, lab_ptr, grp, S, I: tl.constexpr,
                    O: tl.constexpr, BI: tl.constexpr, BO: tl.constexpr, KB: tl.constexpr,
                    FILL: tl.constexpr = 0.0):
        """Group ``grp`` of KB blocks: sources [KB, BI], outputs [KB, BO], weights
        [KB, BO, BI], self-loop weights and labels of the outputs; ``FILL`` where there is no
        arc (0 for probabilities, -inf for the Viterbi kernel's log-weights)."""
        kb = grp * KB + tl.arange(0, KB)
        oo = tl.arange(0, BO)
        ii = tl.arange(0, BI)
        # I is a multiple of 4; written this way the mask is provably constant over groups
        # of 4, so the weight rows load as 16-byte vectors and the axis-2 sum stays in a warp
        im = (ii // 4) < (I // 4)
        src = tl.load(src_ptr + kb[:, None] * I + ii[None, :], mask=im[None, :], other=S)
        dst = tl.load(dst_ptr + kb[:, None] * O + oo[None, :], mask=(oo < O)[None, :], other=S)
        dm = dst < S
        w = tl.load(wt_ptr + (kb[:, None, None] * O + oo[None, :, None]) * I + ii[None, None, :],
                    mask=dm[:, :, None] & im[None, None, :], other=FILL)
        lp = tl.load(loop_ptr + dst, mask=dm, other=FILL)
        lab = tl.load(lab_ptr + dst, mask=dm, other=0)
        return src, dst, dm, w, lp, lab

    @triton.jit
    def _block_fwd_kernel(em_ptr, sh_ptr, lab_ptr, src_ptr, dst_ptr, wt_ptr, loop_ptr, len_ptr,
                          u_ptr, pm_ptr, bar_ptr, T, V, S, KN, t_lo, t_hi,
                          I: tl.constexpr, O: tl.constexpr, BI: tl.constexpr, BO: tl.constexpr,
                          KB: tl.constexpr, P: tl.constexpr, PP: tl.constexpr,
                          HOIST: tl.constexpr, SYNC: tl.constexpr):
        # Program (p, b) owns block groups p, p + P, ... of utterance b and writes, for frames
        # t_lo <= t < min(t_hi, length): u_t[dst] = P_t[dst] * (W u_{t-1} / c_{t-1})[dst] and
        # its partial max pm[b, t, p]; c_t = max_p pm[b, t, p]. Frame 0 is the caller's.
        p = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        NG = (KN + KB - 1) // KB  # block arrays are padded to a multiple of every KB
        em_b = em_ptr + b * T * V
        u_b = u_ptr + b * T * S
        pm_b = pm_ptr + b * T * PP
        pp = tl.arange(0, PP)
        if HOIST:  # exactly one group per program: its weights stay in registers
            src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, wt_ptr, loop_ptr, lab_ptr,
                                                   p, S, I, O, BI, BO, KB)
        for t in range(t_lo, tl.minimum(t_hi, L)):
            if t > t_lo:  # frame t-1 complete (all P programs) before it is gathered
                step_sync(bar_ptr + b, P * (t - t_lo), SYNC)
            sh = tl.load(sh_ptr + b * T + t)
            c = tl.max(tl.load(pm_b + (t - 1) * PP + pp, mask=pp < P, other=0.0,
                               cache_modifier=".cg"), axis=0)
            inv = 1.0 / tl.where(c > 0, c, 1.0)
            prev = u_b + (t - 1) * S
            cur = u_b + t * S
            em_t = em_b + t * V
            mx2 = tl.zeros([KB, BO], dtype=tl.float32)
            for grp in range(p, NG, P):
                if not HOIST:
                    src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, wt_ptr, loop_ptr,
                                                           lab_ptr, grp, S, I, O, BI, BO, KB)
                x = tl.load(prev + src, mask=src < S, other=0.0, cache_modifier=".cg")
                xl = tl.load(prev + dst, mask=dm, other=0.0, cache_modifier=".cg")
                e = tl.load(em_t + lab, mask=dm, other=float("-inf"))
                y = tl.sum(w * x[:, None, :], axis=2) + xl * lp
                u = y * inv * tl.exp(e - sh)
                tl.store(cur + dst, u, mask=dm)
                mx2 = tl.maximum(mx2, u)
            tl.store(pm_b + t * PP + p, tl.max(tl.max(mx2, axis=1), axis=0))

    @triton.jit
    def _block_bwd_kernel(em_ptr, sh_ptr, lab_ptr, src_ptr, dst_ptr, wt_ptr, loop_ptr, len_ptr,
                          u_ptr, c_ptr, v_ptr, gr_ptr, pm_ptr, ps_ptr, bar_ptr, T, V, S, KN, VT,
                          j_lo, j_hi,
                          I: tl.constexpr, O: tl.constexpr, BI: tl.constexpr, BO: tl.constexpr,
                          KB: tl.constexpr, P: tl.constexpr, PP: tl.constexpr,
                          HOIST: tl.constexpr, SYNC: tl.constexpr):
        # src/dst/wt describe the REVERSED graph: outputs are the original sources.
        # Step j (j_lo <= j < min(j_hi, length)) consumes frame t = L-j and produces t-1:
        # V[t-1] = P_{t-1} * beta_{t-1} * d, G[t-1] = A_{t-1} * beta_{t-1} * d with the
        # partial max of the unnormalised beta (pm, its max over p is d_{t-1}) and the partial
        # sum of G (ps). d cancels later. Frame L-1 is the caller's. V has VT rows per
        # utterance: T when the caller keeps it (arc gradients), else a ring of 2.
        p = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        NG = (KN + KB - 1) // KB
        em_b = em_ptr + b * T * V
        u_b = u_ptr + b * T * S
        v_b = v_ptr + b * VT * S
        g_b = gr_ptr + b * T * S
        pm_b = pm_ptr + b * T * PP
        pp = tl.arange(0, PP)
        if HOIST:
            src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, wt_ptr, loop_ptr, lab_ptr,
                                                   p, S, I, O, BI, BO, KB)
        for j in range(j_lo, tl.minimum(j_hi, L)):
            if j > j_lo:
                step_sync(bar_ptr + b, P * (j - j_lo), SYNC)
            t = L - j
            tp = t - 1
            sh = tl.load(sh_ptr + b * T + tp)
            inv_c = 1.0 / tl.load(c_ptr + b * T + tp)
            d = tl.max(tl.load(pm_b + t * PP + pp, mask=pp < P, other=0.0,
                               cache_modifier=".cg"), axis=0)
            inv = 1.0 / tl.where(d > 0, d, 1.0)
            vin = v_b + (t % VT) * S
            em_t = em_b + tp * V
            mx2 = tl.zeros([KB, BO], dtype=tl.float32)
            acc2 = tl.zeros([KB, BO], dtype=tl.float32)
            for grp in range(p, NG, P):
                if not HOIST:
                    src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, wt_ptr, loop_ptr,
                                                           lab_ptr, grp, S, I, O, BI, BO, KB)
                x = tl.load(vin + src, mask=src < S, other=0.0, cache_modifier=".cg")
                xl = tl.load(vin + dst, mask=dm, other=0.0, cache_modifier=".cg")
                e = tl.load(em_t + lab, mask=dm, other=float("-inf"))
                a = tl.load(u_b + tp * S + dst, mask=dm, other=0.0)
                nb = (tl.sum(w * x[:, None, :], axis=2) + xl * lp) * inv
                tl.store(v_b + (tp % VT) * S + dst, nb * tl.exp(e - sh), mask=dm)
                gv = nb * a * inv_c
                tl.store(g_b + tp * S + dst, gv, mask=dm)
                mx2 = tl.maximum(mx2, nb)
                acc2 += gv
            tl.store(pm_b + tp * PP + p, tl.max(tl.max(mx2, axis=1), axis=0))
            tl.store(ps_ptr + (b * T + tp) * PP + p, tl.sum(tl.sum(acc2, axis=1), axis=0))

    @triton.jit
    def _block_viterbi_kernel(em_ptr, lab_ptr, src_ptr, dst_ptr, lw_ptr, la_ptr, lpw_ptr, lpa_ptr,
                              len_ptr, d_ptr, bp_ptr, bar_ptr, T, V, S, KN, t_lo, t_hi,
                              I: tl.constexpr, O: tl.constexpr, BI: tl.constexpr,
                              BO: tl.constexpr, KB: tl.constexpr, P: tl.constexpr,
                              PP: tl.constexpr, HOIST: tl.constexpr, SYNC: tl.constexpr):
        # The block forward's program layout in the tropical semiring, log space (nothing to
        # rescale): delta_t[dst] = max(max_i lw[dst, i] + delta_{t-1}[src_i],
        # loop[dst] + delta_{t-1}[dst]) + e_t[lab[dst]], bp[t, dst] = the winning arc.
        # delta lives in a two-frame ring d[b, t % 2]; frame 0 is the caller's.
        p = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        NG = (KN + KB - 1) // KB
        em_b = em_ptr + b * T * V
        d_b = d_ptr + b * 2 * S
        oo = tl.arange(0, BO)
        if HOIST:
            src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, lw_ptr, lpw_ptr, lab_ptr, p,
                                                   S, I, O, BI, BO, KB, float("-inf"))
        for t in range(t_lo, tl.minimum(t_hi, L)):
            if t > t_lo:
                step_sync(bar_ptr + b, P * (t - t_lo), SYNC)
            prev = d_b + ((t - 1) % 2) * S
            cur = d_b + (t % 2) * S
            em_t = em_b + t * V
            for grp in range(p, NG, P):
                if not HOIST:
                    src, dst, dm, w, lp, lab = _block_tile(src_ptr, dst_ptr, lw_ptr, lpw_ptr,
                                                           lab_ptr, grp, S, I, O, BI, BO, KB,
                                                           float("-inf"))
                kb = grp * KB + tl.arange(0, KB)  # the group's block rows (arc-id lookup)
                x = tl.load(prev + src, mask=src < S, other=float("-inf"), cache_modifier=".cg")
                xl = tl.load(prev + dst, mask=dm, other=float("-inf"), cache_modifier=".cg")
                e = tl.load(em_t + lab, mask=dm, other=float("-inf"))
                best, j = tl.max(w + x[:, None, :], axis=2, return_indices=True)
                arc = tl.load(la_ptr + (kb[:, None] * O + oo[None, :]) * I + j, mask=dm, other=-1)
                stay = xl + lp
                take = stay > best
                arc = tl.where(take, tl.load(lpa_ptr + dst, mask=dm & take, other=-1), arc)
                best = tl.where(take, stay, best)
                tl.store(bp_ptr + (b * T + t) * S + dst, tl.where(best > float("-inf"), arc, -1),
                         mask=dm)
                tl.store(cur + dst, best + e, mask=dm)

    @triton.jit
    def _trace_back_kernel(bp_ptr, src_ptr, len_ptr, start_ptr, st_ptr, arc_ptr, T, S):
        # One program per utterance follows its back-pointers from the best last state
        # (start < 0: no path; the outputs stay 0): a chain of dependent scalar loads,
        # cheaper than moving [B, T, S] back-pointers to the host.
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        s = tl.load(start_ptr + b)
        if s >= 0:
            tl.store(st_ptr + b * T + L - 1, s)
            for j in range(1, L):
                t = L - j
                a = tl.load(bp_ptr + (b * T + t) * S + s).to(tl.int64)
                tl.store(arc_ptr + b * T + t - 1, a)
                s = tl.load(src_ptr + a)
                tl.store(st_ptr + b * T + t - 1, s)


# ============================================================================ launch + tuning
_BEST: dict = {}  # (kernel, shape key) -> chosen launch options; the benchmark prints these
_DEFAULT: dict = {}  # (kernel, shape key) -> index of the first candidate that compiled
FORCE_CONFIG: Optional[dict] = None  # tests: run exactly this config (skips tuning)
TUNE_MIN_WORK = 1 << 17  # B * T * S below this: the default config, no tuning


def _launch(run, key: tuple, cands: list[dict], work: int, on_cuda: bool):
    """Call ``run(cfg)`` (which launches) and return what the last call returned; on CUDA
    the first large call per ``key`` times every candidate config and keeps the fastest.

    Candidates differ only in tile/warp/split options; every run overwrites all the outputs
    the later code reads, so re-running for timing is harmless. A config that fails to
    compile or launch (e.g. out of registers) is skipped.
    """
    if FORCE_CONFIG is not None:
        return run(FORCE_CONFIG)
    if _interpreting() or len(cands) == 1 or not on_cuda or work < TUNE_MIN_WORK:
        # small work: the first candidate that compiles (remembered), no timing
        start = _DEFAULT.get(key, 0)
        for i in range(start, len(cands)):
            try:
                out = run(cands[i])
            except Exception:
                if i == len(cands) - 1:
                    raise
                continue
            _DEFAULT[key] = i
            return out
    best = _BEST.get(key)
    if best is None:
        times = []
        for cfg in cands:
            try:
                run(cfg)  # compile + warm up
                torch.cuda.synchronize()
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                ms = math.inf
                for _ in range(3):
                    ev[0].record()
                    run(cfg)
                    ev[1].record()
                    torch.cuda.synchronize()
                    ms = min(ms, ev[0].elapsed_time(ev[1]))
            except Exception:  # not a usable config here
                ms = math.inf
            times.append(ms)
        if not any(math.isfinite(x) for x in times):
            raise RuntimeError(f"no launch config of {key[0]} works for {key[1:]}")
        best = _BEST[key] = cands[min(range(len(cands)), key=times.__getitem__)]
    return run(best)


def batch_bucket(B: int) -> int:
    """Tuning keys include the batch size rounded up to a power of two: how many programs
    per utterance pay off depends on how many SMs the batch alone would fill."""
    return _next_pow2(B, 1)


def dense_configs(BS: int) -> list[dict]:
    """Launch options for the dense kernels, the default first."""
    if _interpreting():
        return [{"num_warps": 4}]
    # W takes BS*BS/(32*num_warps) registers per thread: keep it <= 128. num_stages=1: no
    # software pipelining (the frame loop is a recurrence; the code prefetches by hand).
    warps = [w for w in (4, 2, 1, 8, 16) if BS * BS // (32 * w) <= 128 and w <= max(4, BS // 16)]
    out = [{"num_warps": w, "num_stages": 1} for w in warps]
    return out + [{"num_warps": warps[0], "num_stages": 3}]


P_MAX = 32  # most programs per utterance (width of the partial-max arrays)


def block_configs(BI: int, BO: int, K: int) -> list[dict]:
    """Launch options for the block kernels (``K`` blocks of ``BI`` x ``BO``), default first.

    ``KB`` blocks form a group; ``P`` programs share an utterance, each taking every P-th
    group (``P = 0``: one program per group, whose weights then stay in registers for the
    whole launch instead of streaming from L2 each frame). More programs per utterance
    shorten the per-frame chain (it is latency-bound) at the cost of one barrier per frame.
    A group's tile takes KB*BI*BO/(32*num_warps) registers per thread (<= 64 here).
    """
    if _interpreting():  # fewest interpreted steps: the interpreter's cost is per op
        return [{"KB": K_ALIGN, "P": 1, "num_warps": 4}]
    opts = ((8, 0, 16, 1), (4, 0, 8, 1), (2, 0, 4, 1), (16, 0, 32, 1), (8, 1, 16, 1),
            (4, 4, 8, 1), (8, 2, 16, 2))
    out = [{"KB": kb, "P": p, "num_warps": nw, "num_stages": ns} for kb, p, nw, ns in opts
           if kb * BI * BO // (32 * nw) <= 64 and (p or -(-K // kb)) <= P_MAX]
    return out or [{"KB": 2, "P": 1, "num_warps": 16, "num_stages": 1}]


# ============================================================================ graph packing
@dataclass
class _BlockPack:
    """Blocks of one direction: rows ``k`` gather ``src[k, :I]`` and write ``dst[k, :O]``."""

    src: Tensor  # [Kp, I] int32, padding S
    dst: Tensor  # [Kp, O] int32, padding S
    flat: Tensor  # [A] int64 position of each arc in the [Kp, O, I] weight array, -1 = self-loop
    Kp: int  # padded count (multiple of K_ALIGN); K real blocks
    K: int
    I: int
    O: int


def _pack_blocks(S: int, src: list[int], dst: list[int]) -> _BlockPack:
    """Group the states by their (non-loop) in-set, as :class:`BlockLayout` does.

    A self-loop normally stays on the diagonal (``loop``), but when the state plus its in-set
    is another group's in-set (the n-gram "repeat" arc ``(b,b) -> (b,b)``), the state joins
    that block and its loop becomes a block entry (else a trigram would split into twice the
    blocks). States nobody enters get blocks with an empty input set (loop term only).
    """
    in_sets, looped, key_of = in_sets_of(src, dst)
    existing = set(key_of.values())
    for b in sorted(looped):
        with_self = tuple(sorted(in_sets.get(b, set()) | {b}))
        if with_self in existing and with_self != key_of.get(b):
            key_of[b] = with_self
    groups: dict[tuple, list[int]] = defaultdict(list)
    for b in range(S):
        if b in key_of:
            groups[key_of[b]].append(b)
    rest = [b for b in range(S) if b not in key_of]
    blocks: list[tuple[tuple, list[int]]] = []
    for key, outs in groups.items():
        for j in range(0, len(outs), BLOCK_OUT):
            blocks.append((key, outs[j:j + BLOCK_OUT]))
    for j in range(0, len(rest), BLOCK_OUT):
        blocks.append(((), rest[j:j + BLOCK_OUT]))
    I = max(4, -(-max(len(k) for k, _ in blocks) // 4) * 4)  # multiple of 4: 16-byte rows
    O = max(len(d) for _, d in blocks)
    Kp = -(-len(blocks) // K_ALIGN) * K_ALIGN
    src_idx = torch.full((Kp, I), S, dtype=torch.int32)
    dst_idx = torch.full((Kp, O), S, dtype=torch.int32)
    pos_in: dict[tuple[int, int], int] = {}
    pos_out: dict[int, tuple[int, int]] = {}
    for k, (key, outs) in enumerate(blocks):
        if key:
            src_idx[k, :len(key)] = torch.tensor(key, dtype=torch.int32)
        dst_idx[k, :len(outs)] = torch.tensor(outs, dtype=torch.int32)
        for i, s in enumerate(key):
            pos_in[(k, s)] = i
        for o, d in enumerate(outs):
            pos_out[d] = (k, o)
    flat = []
    for a, b in zip(src, dst):
        k, o = pos_out[b]
        i = pos_in.get((k, a))
        if i is None:  # only a self-loop can be outside its state's block
            assert a == b
            flat.append(-1)
        else:
            flat.append((k * O + o) * I + i)
    return _BlockPack(src_idx, dst_idx, torch.tensor(flat, dtype=torch.int64), Kp, len(blocks), I, O)


@dataclass
class _BlockPlan:
    fwd: _BlockPack
    bwd: _BlockPack  # of the reversed graph (arcs dst -> src)


def _block_plan(graph: Graph) -> _BlockPlan:
    key = ("triton_block_plan", graph.device)
    if key not in graph._cache:
        S = graph.num_states
        src, dst = graph.src.tolist(), graph.dst.tolist()
        fwd, bwd = _pack_blocks(S, src, dst), _pack_blocks(S, dst, src)
        dev = graph.device
        for p in (fwd, bwd):
            p.src, p.dst, p.flat = p.src.to(dev), p.dst.to(dev), p.flat.to(dev)
        graph._cache[key] = _BlockPlan(fwd, bwd)
    return graph._cache[key]


def _tile(p: _BlockPack) -> tuple[int, int]:
    """(BI, BO): the block tile's power-of-two input and output widths."""
    return _next_pow2(p.I, 4), _next_pow2(p.O, 4)


def _block_run(kernel, p: _BlockPack, cfg: dict, head: tuple, dims: tuple, B: int, T: int,
               prime) -> int:
    """``prime()`` (the host's first step), then the block kernel over steps 1 .. T-1 with
    ``cfg``'s split: grid (P, B). Priming on every run matters because tuning runs several
    configs in one call and the backward's two-frame ring overwrites the primed frame.

    On CUDA one launch runs every step, the P programs of an utterance meeting at a barrier
    between steps. That needs them co-resident: programs start in grid order (p fastest),
    so at most one utterance is ever partly resident and it completes once earlier ones
    retire. The interpreter runs programs one after another, so with P > 1 it gets one
    launch per step (the launch boundary is the barrier). Returns P: columns ``>= P`` of the
    partial max / sum arrays are not this launch's (tuning runs other splits first).
    """
    KB = cfg["KB"]
    NG = -(-p.K // KB)
    P = NG if cfg["P"] == 0 else min(cfg["P"], NG)
    if P > P_MAX:
        raise ValueError(f"{P} programs per utterance > P_MAX={P_MAX}")
    BI, BO = _tile(p)
    consts = dict(I=p.I, O=p.O, BI=BI, BO=BO, KB=KB, P=P, PP=P_MAX, HOIST=P == NG)
    opts = {k: v for k, v in cfg.items() if k not in ("KB", "P")}
    prime()
    steps = [(j, j + 1) for j in range(1, T)] if _interpreting() and P > 1 else [(1, T)]
    bar = torch.zeros(B, dtype=torch.int32, device=head[0].device)
    for lo, hi in steps:
        if hi > lo:
            kernel[(P, B)](*head, bar, *dims, lo, hi, **consts, SYNC=P > 1 and hi - lo > 1,
                           **opts)
    return P


# ============================================================================ public API
def _kind(graph: Graph) -> Optional[str]:
    """Which kernel family fits ``graph`` (None: none does)."""
    if graph.is_batch or graph.num_states == 0:
        return None
    if graph.num_states <= DENSE_MAX_STATES:
        return "dense"
    key = ("triton_kind",)
    if key not in graph._cache:
        L = block_layout(graph)  # cached by choose_backend as well
        # side arcs (1 x 1 blocks kept out of the layout) have no kernel path: torch block
        ok = L.I <= BLOCK_MAX_IN and L.padded <= 3 * max(graph.num_arcs, 1) and not L.num_side
        graph._cache[key] = "block" if ok else None
    return graph._cache[key]


def triton_supports(graph: Graph, emissions: Tensor) -> bool:
    """True when the fused kernels can run this batch: triton importable, float32 emissions
    on CUDA (or any device under ``TRITON_INTERPRET=1``), one shared graph that fits."""
    if not HAVE_TRITON or emissions.dtype != torch.float32:
        return False
    if not (emissions.is_cuda or _interpreting()):
        return False
    if graph.device != emissions.device:
        return False
    return _kind(graph) is not None


@dataclass
class _Weights:
    """Everything the kernels need from the graph's weights (cached until they change)."""

    lab: Tensor  # [S] int32
    used: Tensor  # labels that some state emits
    init_w: Tensor
    final_w: Tensor
    const: Tensor  # imax + fmax
    wmax: Tensor
    cst: Tensor  # [2] = (const, wmax) for the kernels
    used_range: Optional[tuple]  # (lo, hi + 1) when the emitted labels are exactly lo..hi
    unique_labels: bool  # no two states share a label
    W: Optional[Tensor] = None  # dense: [BS, BS] zero-padded W
    WT: Optional[Tensor] = None  # dense: the same for W transposed
    loop_fwd: Optional[Tensor] = None  # block: shares of the self-loops outside blocks [S]
    loop_bwd: Optional[Tensor] = None  # the same for the reversed graph's blocks
    wt_fwd: Optional[Tensor] = None  # block: [Kp*O*I] weights, forward layout
    wt_bwd: Optional[Tensor] = None  # block: same for the reversed graph


def _weights(graph: Graph, kind: str) -> _Weights:
    # Valid while the same memory holds the same values: the entry keeps (detached views
    # of) the tensors alive, so their addresses cannot be reused by new weight tensors, and
    # in-place updates bump the shared version counter.
    srcs = (graph.weights, graph.init, graph.final)
    ver = tuple((t.data_ptr(), t._version, tuple(t.shape), t.stride()) for t in srcs)
    key = ("triton_weights", kind)
    hit = graph._cache.get(key)
    if hit is not None and hit[0] == ver:
        return hit[1]
    dtype = torch.float32
    init = graph.init.detach().to(dtype)
    final = graph.final.detach().to(dtype)
    imax, fmax = _max_finite(init), _max_finite(final)
    w = graph.weights.detach().to(dtype)
    wmax = _max_finite(w)
    used = torch.unique(graph.labels)
    out = _Weights(lab=graph.labels.to(torch.int32).contiguous(), used=used,
                   init_w=torch.exp(init - imax).contiguous(),
                   final_w=torch.exp(final - fmax).contiguous(), const=imax + fmax, wmax=wmax,
                   cst=torch.stack([imax + fmax, wmax]).to(dtype).contiguous(),
                   used_range=(int(used[0]), int(used[-1]) + 1)
                   if used.numel() == int(used[-1]) - int(used[0]) + 1 else None,
                   unique_labels=used.numel() == graph.num_states)
    if kind == "dense":
        tr = DenseTransitions(graph, w, dtype)
        BS = _next_pow2(graph.num_states)
        pad = torch.zeros(BS, BS, dtype=dtype, device=w.device)
        out.W = pad.clone()
        out.W[:graph.num_states, :graph.num_states] = tr.W
        pad[:graph.num_states, :graph.num_states] = tr.W.T
        out.WT = pad
    else:
        plan = _block_plan(graph)
        arc_w = torch.exp(w - wmax)
        wts, loops = [], []
        for p in (plan.fwd, plan.bwd):
            nl = p.flat >= 0
            wts.append(torch.zeros(p.Kp * p.O * p.I, dtype=dtype, device=w.device).index_add_(
                0, p.flat[nl], arc_w[nl]))
            loops.append(torch.zeros(graph.num_states, dtype=dtype, device=w.device).index_add_(
                0, graph.src[~nl], arc_w[~nl]))
        out.wt_fwd, out.wt_bwd = wts
        out.loop_fwd, out.loop_bwd = loops
    graph._cache[key] = (ver, out, tuple(t.detach() for t in srcs))
    return out


@dataclass
class TritonContext:
    kind: str
    graph: Graph
    wts: _Weights
    em: Tensor  # [B, T, V], padding frames zeroed
    shift: Tensor  # [B, T] per-frame emission shift
    lengths: Tensor  # [B] int32
    A: Tensor  # dense: normalised alpha; block: unnormalised u (alpha = U / c)
    c: Tensor  # [B, T] forward normalisers


class TritonTransitions:
    """What score.py keeps as ``trans``; the torch transitions are built only for arc grads."""

    def __init__(self, graph: Graph, kind: str, wmax: Tensor):
        self.graph, self.kind, self.wmax = graph, kind, wmax

    def torch_trans(self, dtype: torch.dtype):
        if self.kind == "dense":
            return DenseTransitions(self.graph, self.graph.weights.detach(), dtype)
        return BlockTransitions(self.graph, self.graph.weights.detach(), dtype,
                                block_layout(self.graph))


def triton_forward(em: Tensor, lengths: Tensor, graph: Graph):
    """Forward over all frames in one launch: ``(total [B], ctx, trans)`` (see score.py).

    ``em`` is ``[B, T, V]``; no kernel reads a frame at or beyond its utterance's length, so
    padding may hold anything (NaN included). Totals that underflow come back as ``-inf``
    (score.py redoes those utterances in log space).
    """
    if not HAVE_TRITON:
        raise RuntimeError("backend='triton' needs the triton package")
    if em.dtype != torch.float32:
        raise ValueError(f"the triton backend computes in float32, got {em.dtype}")
    kind = _kind(graph)
    if kind is None:
        raise ValueError("graph does not fit the triton kernels (a packed batch, or neither "
                         f"S <= {DENSE_MAX_STATES} nor a dense-block structure)")
    wts = _weights(graph, kind)
    em = em.contiguous()
    B, T, V = em.shape
    S = graph.num_states
    dev = em.device
    # per-frame shift = max over the labels the states emit (as scaled_forward), -inf -> 0
    ur = wts.used_range
    sh = (em[:, :, ur[0]:ur[1]] if ur else em.index_select(2, wts.used)).amax(-1)
    sh = sh.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    lens = lengths.contiguous()  # int64; the kernels convert on load
    A = torch.empty(B, T, S, dtype=em.dtype, device=dev)
    work = B * T * S
    if kind == "dense":
        c = torch.empty(B, T, dtype=em.dtype, device=dev)  # frames < length are written
        total = torch.empty(B, dtype=em.dtype, device=dev)
        BS = _next_pow2(S)
        args = (em, sh, wts.lab, wts.WT, wts.init_w, wts.final_w, lens, A, c, total, wts.cst,
                T, V, S)
        _launch(lambda cfg: _dense_fwd_kernel[(B,)](*args, BS=BS, **cfg), ("dense_fwd", BS),
                dense_configs(BS), work, em.is_cuda)
    else:
        # frame 0 and the total here; frames 1.. in the kernel (partial maxima in pm)
        p = _block_plan(graph).fwd
        pm = torch.zeros(B, T, P_MAX, dtype=em.dtype, device=dev)

        def prime() -> None:
            A[:, 0] = wts.init_w * torch.exp(em[:, 0].index_select(1, graph.labels) - sh[:, :1])
            pm[:, 0, 0] = A[:, 0].amax(1)

        head = (em, sh, wts.lab, p.src, p.dst, wts.wt_fwd, wts.loop_fwd, lens, A, pm)
        P = _launch(lambda cfg: _block_run(_block_fwd_kernel, p, cfg, head, (T, V, S, p.K), B,
                                           T, prime),
                    ("block_fwd", p.I, p.O, batch_bucket(B)), block_configs(*_tile(p), p.K),
                    work, em.is_cuda)
        c = pm[:, :, :P].amax(2)
        c = torch.where(c > 0, c, torch.ones_like(c))
        rows, last = torch.arange(B, device=dev), lengths - 1
        fin = (A[rows, last] * wts.final_w).sum(1) / c[rows, last]
        valid = torch.arange(T, device=dev).unsqueeze(0) < lengths.unsqueeze(1)
        logsum = torch.where(valid, sh + torch.log(c), torch.zeros_like(c)).sum(1)
        total = torch.log(fin) + logsum + wts.cst[0] + last.to(em.dtype) * wts.cst[1]
    return total, TritonContext(kind, graph, wts, em, sh, lens, A, c), \
        TritonTransitions(graph, kind, wts.wmax)


def _label_sum(x: Tensor, labels: Tensor, V: int, scale: Optional[Tensor]) -> Tensor:
    """``out[b, t, v] = scale[b, t] * sum_{s: labels[s] = v} x[b, t, s]`` as one matmul with
    a one-hot matrix (an index_add over S would be one atomic per element). Forced to full
    float32: TF32 (``set_float32_matmul_precision("high")``) would cost 3 digits."""
    B, T, S = x.shape
    onehot = torch.zeros(S, V, dtype=x.dtype, device=x.device)
    onehot[torch.arange(S, device=x.device), labels] = 1.0
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out = torch.mm(x.reshape(B * T, S), onehot).view(B, T, V)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    return out if scale is None else out.mul_(scale.unsqueeze(-1))


def triton_backward(ctx: TritonContext, g: Tensor, trans: TritonTransitions, need_w: bool,
                    num_labels: Optional[int] = None):
    """``(gamma [B, T, S] * g, arc_grad, init_grad, final_grad)`` as in scaled_backward.

    With ``num_labels=V`` the first item is instead the gradient w.r.t. the emissions
    ``[B, T, V]`` (gamma summed per label), which skips materialising gamma for block graphs.
    """
    em, sh, lens, A, c, wts = ctx.em, ctx.shift, ctx.lengths, ctx.A, ctx.c, ctx.wts
    B, T, V = em.shape
    S = A.shape[2]
    dev = em.device
    g = g.to(em.dtype).contiguous()
    lengths = lens
    work = B * T * S
    zero = 0.0
    if need_w:
        rows = torch.arange(B, device=dev)
    if need_w or ctx.kind == "block":
        valid = (torch.arange(T, device=dev).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    if ctx.kind == "dense":
        # without arc gradients the kernel writes the emission gradient itself (no gamma)
        by_label = 0 if need_w or num_labels is None else 1 if wts.unique_labels else 2
        gam = torch.empty(B, T, num_labels if by_label else S, dtype=em.dtype, device=dev)
        Y = torch.zeros(B, T, S, dtype=em.dtype, device=dev) if need_w else gam
        BS = _next_pow2(S)
        args = (em, sh, wts.lab, wts.W, wts.final_w, lens, A, c, g, gam, Y, T, V, S)

        def run(cfg: dict) -> None:
            gam.zero_()  # padding frames, unused labels; atomic adds start from 0 every run
            _dense_bwd_kernel[(B,)](*args, BS=BS, NEED_Y=bool(need_w), BY_LABEL=by_label, **cfg)

        _launch(run, ("dense_bwd", BS, bool(need_w), by_label), dense_configs(BS), work,
                em.is_cuda)
        first = gam if by_label or num_labels is None else \
            _label_sum(gam, ctx.graph.labels, num_labels, None)
        if need_w:
            gam0, gam_last = gam[:, 0], gam[rows, lengths - 1]
            X = torch.where(valid, A, zero)
    else:
        # frame L-1 here; frames L-2 .. 0 in the kernel (partial max / sum in pm / ps)
        p = _block_plan(ctx.graph).bwd
        VT = T if need_w else 2
        Vb = torch.empty(B, VT, S, dtype=em.dtype, device=dev)
        G = torch.zeros(B, T, S, dtype=em.dtype, device=dev)
        pm = torch.zeros(B, T, P_MAX, dtype=em.dtype, device=dev)
        ps = torch.zeros(B, T, P_MAX, dtype=em.dtype, device=dev)
        r, last = torch.arange(B, device=dev), lengths - 1

        def prime() -> None:
            e_last = em[r, last].index_select(1, ctx.graph.labels)
            Vb[r, last % VT] = wts.final_w * torch.exp(e_last - sh[r, last].unsqueeze(1))
            G[r, last] = wts.final_w * A[r, last] / c[r, last].unsqueeze(1)
            pm[r, last, 0] = 1.0
            ps[r, last, 0] = G[r, last].sum(1)

        head = (em, sh, wts.lab, p.src, p.dst, wts.wt_bwd, wts.loop_bwd, lens, A, c, Vb, G, pm,
                ps)
        P = _launch(lambda cfg: _block_run(_block_bwd_kernel, p, cfg, head, (T, V, S, p.K, VT),
                                           B, T, prime),
                    ("block_bwd", p.I, p.O, batch_bucket(B)), block_configs(*_tile(p), p.K),
                    work, em.is_cuda)
        sab = ps[:, :, :P].sum(2)
        ok = valid.squeeze(-1) & (sab > 0)
        scale = torch.where(ok, g.unsqueeze(1) / torch.where(ok, sab, torch.ones_like(sab)),
                            torch.zeros_like(sab))  # gamma = G * scale (G is 0 past a length)
        if num_labels is None:
            first = G.mul_(scale.unsqueeze(-1))
            if need_w:
                gam0, gam_last = first[:, 0], first[rows, lengths - 1]
        else:
            first = _label_sum(G, ctx.graph.labels, num_labels, scale)
            if need_w:
                gam0 = G[:, 0] * scale[:, :1]
                gam_last = G[rows, lengths - 1] * scale[rows, lengths - 1].unsqueeze(1)
        if need_w:
            Y = torch.where(valid, Vb * (scale / c).unsqueeze(-1), zero)
            X = torch.where(valid, A / c.unsqueeze(-1), zero)
    arc_grad = init_grad = final_grad = None
    if need_w:
        tt = trans.torch_trans(em.dtype)
        arc_grad = tt.arc_counts(X[:, :-1].reshape(-1, S), Y[:, 1:].reshape(-1, S))
        init_grad = gam0.sum(0)
        final_grad = gam_last.sum(0)
    return first, arc_grad, init_grad, final_grad


# ============================================================================ Viterbi
VITERBI_ENV = "UASR_TRITON_VITERBI"  # "0": never; "force": also CPU tensors under
# TRITON_INTERPRET=1 (tests), and a failure raises instead of falling back
_VITERBI_FAILED = False  # set after a compile/launch failure (warned once): torch path then


def viterbi_mode() -> str:
    v = os.environ.get(VITERBI_ENV, "1").strip().lower()
    return "off" if v in ("0", "off", "false", "no") else "force" if v == "force" else "auto"


@dataclass
class _ViterbiTables:
    """Best-of-parallel-arcs log-weights and the arcs attaining them (cached per weights)."""

    lw: Tensor  # dense: [BS, BS] indexed [dst, src]; block: [Kp*O*I] in the forward layout
    arc: Tensor  # int32, same shape; -1 where there is no arc
    loop_w: Optional[Tensor] = None  # block: [S] self-loops outside the blocks
    loop_arc: Optional[Tensor] = None


def _viterbi_tables(graph: Graph, kind: str) -> _ViterbiTables:
    """Tables of :func:`triton_viterbi`; ties go to the largest arc id, as in
    :func:`uasr.graph.forward_backward.block_tropical_forward`. Cached until the weights
    change."""
    w = graph.weights
    ver = (w.data_ptr(), w._version, tuple(w.shape))
    key = ("triton_viterbi", kind)
    hit = graph._cache.get(key)
    if hit is not None and hit[0] == ver:
        return hit[1]
    wf = w.detach().to(torch.float32)
    if kind == "dense":
        BS = _next_pow2(graph.num_states)
        lw, arc = best_arcs(wf, slice(None), graph.dst * BS + graph.src, BS * BS)
        out = _ViterbiTables(lw.view(BS, BS), arc.to(torch.int32).view(BS, BS))
    else:
        p = _block_plan(graph).fwd
        nl = p.flat >= 0
        lw, arc = best_arcs(wf, nl, p.flat[nl], p.Kp * p.O * p.I)
        loop_w, loop_arc = best_arcs(wf, ~nl, graph.src[~nl], graph.num_states)
        out = _ViterbiTables(lw, arc.to(torch.int32), loop_w, loop_arc.to(torch.int32))
    graph._cache[key] = (ver, out, w.detach())
    return out


def triton_viterbi(em: Tensor, lengths: Tensor, graph: Graph) -> tuple[Tensor, Tensor]:
    """Max-product forward in one launch: ``(last [B, S], bp [B, T, S])``, the contract of
    ``log_forward(..., semiring="tropical")`` with ``last`` = its delta at each utterance's
    last frame (no final weights) and back-pointer arcs (int32, -1 where a state is
    unreachable; frame 0 and padding frames -1). Dense and block graphs."""
    kind = _kind(graph) if em.dtype == torch.float32 else None
    if kind is None:
        raise ValueError("triton_viterbi needs float32 emissions and a shared graph that fits "
                         f"the kernels (S <= {DENSE_MAX_STATES}, or dense blocks)")
    em = em.contiguous()
    B, T, V = em.shape
    S = graph.num_states
    tab = _viterbi_tables(graph, kind)
    lab = graph.labels.to(torch.int32).contiguous()
    init = graph.init.detach().to(torch.float32)
    bp = torch.full((B, T, S), -1, dtype=torch.int32, device=em.device)
    lens = lengths.contiguous()
    if kind == "dense":
        last = torch.empty(B, S, dtype=torch.float32, device=em.device)
        BS = tab.lw.shape[0]
        args = (em, lab, tab.lw, tab.arc, init.contiguous(), lens, bp, last, T, V, S)
        _launch(lambda cfg: _dense_viterbi_kernel[(B,)](*args, BS=BS, **cfg),
                ("dense_viterbi", BS), dense_configs(BS), B * T * S, em.is_cuda)
        return last, bp
    p = _block_plan(graph).fwd
    ring = torch.empty(B, 2, S, dtype=torch.float32, device=em.device)

    def prime() -> None:
        ring[:, 0] = init + em[:, 0].index_select(1, graph.labels)

    head = (em, lab, p.src, p.dst, tab.lw, tab.arc, tab.loop_w, tab.loop_arc, lens, ring, bp)
    _launch(lambda cfg: _block_run(_block_viterbi_kernel, p, cfg, head, (T, V, S, p.K), B, T,
                                   prime),
            ("block_viterbi", p.I, p.O, batch_bucket(B)), block_configs(*_tile(p), p.K),
            B * T * S, em.is_cuda)
    return ring[torch.arange(B, device=em.device), (lengths - 1) % 2], bp


def triton_trace_back(bp: Tensor, last: Tensor, scores: Tensor, lengths: Tensor,
                      graph: Graph) -> tuple[Tensor, Tensor]:
    """``(states [B, T], arcs [B, T])`` int64 on the device, as score.py's ``_trace_back``
    (``arcs[b, t - 1]`` enters frame ``t``; 0 at or beyond a length and where ``scores`` is
    -inf), from :func:`triton_viterbi`'s outputs plus final weights (``last``)."""
    B, T, S = bp.shape
    start = torch.where(torch.isfinite(scores), last.argmax(1), -1).contiguous()
    states = torch.zeros(B, T, dtype=torch.int64, device=bp.device)
    arcs = torch.zeros_like(states)
    _trace_back_kernel[(B,)](bp, graph.src.contiguous(), lengths.contiguous(), start, states,
                             arcs, T, S, num_warps=1)
    return states, arcs


def maybe_best_paths(em: Tensor, lengths: Tensor, graph: Graph
                     ) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """``(scores [B], states [B, T], arcs [B, T])`` (device tensors) by :func:`triton_viterbi`
    and :func:`triton_trace_back`, for float32 CUDA emissions and a shared graph that fits;
    else None (also after a compile or launch failure, warned once: the caller runs the torch
    path; ``UASR_TRITON_VITERBI=0`` skips the kernels)."""
    global _VITERBI_FAILED
    mode = viterbi_mode()
    if mode == "off" or (_VITERBI_FAILED and mode != "force"):
        return None
    if not triton_supports(graph, em):
        return None
    try:
        last, bp = triton_viterbi(em, lengths, graph)
        last = last + graph.final.detach().to(last.dtype)
        scores = last.max(dim=1).values
        return (scores, *triton_trace_back(bp, last, scores, lengths, graph))
    except Exception as err:  # noqa: BLE001 - any kernel failure: fall back loudly, once
        if mode == "force":
            raise
        _VITERBI_FAILED = True
        warnings.warn(f"the fused Triton Viterbi failed ({type(err).__name__}: {err}); using "
                      "the torch path from now on", RuntimeWarning, stacklevel=2)
        return None
