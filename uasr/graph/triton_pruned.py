"""Fused beam-pruned forward-backward (Triton): :mod:`uasr.graph.pruned` in two launches.

Same semantics as :func:`uasr.graph.pruned.pruned_forward` / :func:`pruned_backward` (the
torch code stays the reference; the tests compare the two), but each pass over the ``T``
frames is ONE kernel launch with one program (CTA) per utterance that loops over the frames
inside, instead of ~40 small torch ops per frame.

Forward, per utterance and frame ``t = 1 .. L-1`` (frame 0 is the top-k of ``init +
emissions[:, 0, labels]``, done with ``torch.topk`` on the host exactly as the torch path does
it). The ``k`` kept states of frame ``t-1`` are read back from the outputs (``act`` / ``la``,
``[B, T, k]``); the candidates are the ``k*D`` (slot, out-arc) pairs of the padded out-arc
table (``OutArcs``: ``D`` = largest out-degree; padding arcs go to the dummy state ``S``),
candidate ``c = slot*D + j``, processed in chunks of ``CH``:

A. (fast path) ``z = la[slot] + w + emission[t, lab[dst]]`` (the emission belongs to the
   successor, so it can be added before recombining) and ``atomic_add(SUM[dst], exp(z -
   U))`` in the same pass, ``U`` = best kept score + largest arc weight + largest emission of
   the frame (an upper bound of every ``z``: nothing overflows). ``SUM`` is a per-utterance
   scratch of size ``S+1`` kept at 0 between frames.
B. ``v = atomic_xchg(SUM[dst], 0)``: exactly one candidate per successor gets the sum (the
   representative; the others read 0) and the scratch is reset; ``score = U + log(v)``.
C. Top-k of the ``k*D`` scores without sorting (:func:`_search`): order-preserving int32
   keys; the k-th largest key is searched with three probes per step (one multi-operand CTA
   reduction), starting from a guess (the previous frame's spread of kept scores below the
   new best) and stopping as soon as a probe leaves exactly ``k`` keys above it. States
   strictly above the threshold are kept, then the first (by candidate index) of those equal
   to it: the same set as ``torch.topk`` up to ties. One prefix sum per chunk
   (:func:`_compact`) writes them into slots ``0..n-1`` of frame ``t`` (``act`` = state,
   ``la`` = log-forward score, ``Ek`` = emission); free slots get ``act = S``, ``la = -inf``,
   as in the torch code.
D. Exactness check: the one-shift sums lose candidates whose ``exp(z - U)`` underflows
   (``z < U - 87``). If some ``z < U - 80`` (a flag) and not every kept score is ``>= U -
   60`` (then a lost candidate is < e^-27 of any kept state: below float32 rounding, and no
   state that should be kept can be missing), the frame is redone with the torch code's
   arithmetic (:func:`_scores_exact`: ``atomic_max`` per successor, ``exp(cs - max)`` sums,
   one representative by a plain store, ``score = max + log(sum) + e``) and selected again.
   ``STATS["redone"]`` counts such frames (0 on the benchmark).

An utterance may be split over ``P`` programs (a launch option, tuned): each forms and
accumulates ``1/P`` of the candidates (A, B), all run the same search on the same scores
(C, no communication needed) and each compacts its own share; program 0 alone redoes a
frame (D). The phases are separated by barriers: ``tl.debug_barrier()`` (``bar.sync``) when
``P = 1``, else :func:`uasr.graph.triton_kernels.step_sync` across the programs (a counter
in global memory). Loads of data that atomics or other programs wrote use
``cache_modifier=".cg"`` (L2, never a stale L1 line). Frames ``t >= L`` get copies of frame
``L-1`` (what the torch code stores), and the total is ``logsumexp(la + final)`` of frame
``L-1``, computed in the kernel.

Backward (one launch, frames in reverse): ``beta`` of the kept states of frame ``t`` lives
in registers; ``beta + Ek`` is scattered into a per-utterance scratch ``BUF[state]`` as one
8-byte word tagged with the frame (``t << 32 | bits``: entries of other frames are ignored,
nothing is ever reset), and the kept states of frame ``t-1`` pull ``beta_{t-1} =
logsumexp_j(w + BUF[dst_j])`` over their out-arcs tagged ``t`` (a ``[KC slots, D]`` tile,
logsumexp along the arcs: the torch code's ``buf`` with ``-inf`` elsewhere). With ``P``
programs per utterance each owns ``1/P`` of the slots of every frame, and ``BUF`` is
double-buffered by frame parity, so one barrier per frame suffices. The kernel writes the
occupancy ``post = exp(la + beta - Z) * g`` of every kept slot; the emission
gradient is one ``scatter_add`` over labels on the host. Gradients w.r.t. the graph's
weights are not fused: when they are needed, the torch :func:`pruned_backward` runs on this
forward's lattice (same ``PrunedContext``).

Viterbi (``viterbi(..., beam=k)``): :func:`uasr.graph.pruned.pruned_viterbi` in one launch (one program per
utterance; per frame the best score per successor by ``atomic_max``, the largest candidate
index attaining it as the representative, then the same top-k search, whose compaction also
writes the back-pointers), and a one-program-per-utterance trace-back through the kept slots.

Only float32; graphs shared by the batch; ``k * D <= MAX_CANDIDATES`` (the top-k key tile).
Launch options (``CH`` / ``KC``, warps, ``P``) are timed on the first large call per
batch-size bucket (the shared ``triton_kernels._launch``). ``UASR_TRITON_PRUNED=0`` disables the kernels (``total_score``
and ``viterbi`` then run the torch path); ``=force`` also uses them for CPU tensors under
``TRITON_INTERPRET=1`` (tests) and re-raises errors instead of falling back. Timings on an
H100: benchmarks/bench_gpu_NOTES.md.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Optional

import torch

from uasr.graph.graph import Graph
from uasr.graph.pruned import PrunedContext, out_arcs

try:  # triton is optional: without it the torch path is used
    import triton
    import triton.language as tl
    HAVE_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None
    tl = None
    HAVE_TRITON = False

Tensor = torch.Tensor
NEG_INF = -math.inf
MAX_CANDIDATES = 32768  # k * D: the top-k key tile in registers
ENV = "UASR_TRITON_PRUNED"
FORCE_FWD: Optional[dict] = None  # tests: exactly this launch config (skips tuning)
FORCE_BWD: Optional[dict] = None
# multi-operand reductions in the top-k search (None: on when compiled; the interpreter runs
# them element by element, so the tests turn them on only for one small case)
FUSED_REDUCE: Optional[bool] = None
_DISABLED = False  # set after a failure on CUDA (warned once); the torch path is used then
STATS: dict = {}  # last forward: {"steps": [B] bisection steps, "redone": [B] exact redos}
# The fast path (one shift U per frame) is exact to rounding when no candidate is below
# U - [0] (no exp underflows) or every kept score is >= U - [1]; else the frame is redone with
# a max per successor. Tests set (-1, -1) to redo every frame.
FAST_LOW = (80.0, 60.0)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _next_pow2(n: int, lo: int = 1) -> int:
    return max(lo, 1 << max(0, int(n) - 1).bit_length())


# ============================================================================ kernels
if HAVE_TRITON:
    from uasr.graph import triton_kernels as tk  # step_sync (barrier between steps)

    NEG = tl.constexpr(float("-inf"))
    NEGK = tl.constexpr(-2139095041)  # _orderable(-inf)

    @triton.jit
    def _orderable(x):
        """float32 -> int32 with the same order (for finite values and -inf)."""
        i = x.to(tl.int32, bitcast=True)
        return tl.where(i >= 0, i, i ^ 0x7FFFFFFF)

    @triton.jit
    def _accumulate(pa, pl, odst_ptr, ow_ptr, olab_ptr, em_t, sum_b, cd_b, flag_t, S, c_lo, c_hi,
                    U, low_all, D: tl.constexpr, CH: tl.constexpr):
        """Fast path, first half, for candidates ``c_lo <= c < c_hi``: one shift ``U`` for
        every successor, an upper bound of every candidate score ``z = la + w + e`` (the
        emission is the successor's, so it can be added before recombining):
        ``SUM[dst] += exp(z - U)`` in the same pass that forms the candidates. ``*flag_t`` is
        set when some ``z < U - low_all`` (its ``exp`` may underflow); the caller then checks
        that every kept score is far enough above."""
        cc = tl.arange(0, CH)
        for c0 in range(c_lo, c_hi, CH):
            c = c0 + cc
            cm = c < c_hi
            slot = c // D
            j = c - slot * D
            s = tl.load(pa + slot, mask=cm, other=0, cache_modifier=".cg").to(tl.int32)
            s = tl.where(cm, s, S)
            lp = tl.load(pl + slot, mask=cm, other=NEG, cache_modifier=".cg")
            off = s * D + j
            d = tl.load(odst_ptr + off, mask=cm, other=0)
            w = tl.load(ow_ptr + off, mask=cm, other=NEG)
            lab = tl.load(olab_ptr + off, mask=cm, other=0)
            e = tl.load(em_t + lab, mask=cm, other=0.0)
            z = lp + w + e
            ok = cm & (d < S) & (z > NEG)
            tl.store(cd_b + c, tl.where(ok, d, S), mask=cm)
            tl.atomic_add(sum_b + d, tl.exp(z - U), mask=ok, sem="relaxed")
            tl.store(flag_t + cc * 0, tl.full([CH], 1, tl.int32), mask=ok & (z < U - low_all))

    @triton.jit
    def _take_sums(sum_b, cd_b, cs_b, S, c_lo, c_hi, U, CH: tl.constexpr):
        """Fast path, second half (after every ``_accumulate`` of the frame): ``score = U +
        log(SUM)``; ``atomic_xchg(SUM, 0)`` both reads the sum and resets it, and exactly one
        candidate per successor gets it (the others read 0): the representative (a plain
        ``REP[dst] = c`` store + load instead, as in the exact path, measured 7-20% slower on
        an H100)."""
        cc = tl.arange(0, CH)
        for c0 in range(c_lo, c_hi, CH):
            c = c0 + cc
            cm = c < c_hi
            d = tl.load(cd_b + c, mask=cm, other=0)
            ok = cm & (d < S)
            # (int32 view: the interpreter has no float xchg; 0.0 and 0 have the same bits)
            v = tl.atomic_xchg(sum_b.to(tl.pointer_type(tl.int32)) + d,
                               tl.zeros([CH], dtype=tl.int32), mask=ok, sem="relaxed")
            v = v.to(tl.float32, bitcast=True)
            tl.store(cs_b + c, tl.where(ok & (v > 0.0), U + tl.log(v), NEG), mask=cm)

    @triton.jit
    def _scores_exact(pa, pl, odst_ptr, ow_ptr, lab_ptr, em_t, m_b, sum_b, rep_b, cd_b, cs_b,
                      S, NC, D: tl.constexpr, CH: tl.constexpr):
        """The torch code's arithmetic: per successor its own max ``M`` (``atomic_max``), the
        sum ``SUM`` of ``exp(cs - M)``, one representative ``REP`` (any writer wins), then
        ``score = M + log(SUM) + e``; the representative resets ``M`` / ``SUM``."""
        cc = tl.arange(0, CH)
        for c0 in range(0, NC, CH):
            c = c0 + cc
            cm = c < NC
            slot = c // D
            j = c - slot * D
            s = tl.load(pa + slot, mask=cm, other=0).to(tl.int32)
            s = tl.where(cm, s, S)
            lp = tl.load(pl + slot, mask=cm, other=NEG)
            off = s * D + j
            d = tl.load(odst_ptr + off, mask=cm, other=0)
            w = tl.load(ow_ptr + off, mask=cm, other=NEG)
            cs = lp + w
            ok = cm & (d < S) & (cs > NEG)
            d = tl.where(ok, d, S)
            tl.store(cd_b + c, d, mask=cm)
            tl.store(cs_b + c, cs, mask=cm)
            tl.atomic_max(m_b + d, cs, mask=ok, sem="relaxed")
            tl.store(rep_b + d, c, mask=ok)
        tl.debug_barrier()
        for c0 in range(0, NC, CH):
            c = c0 + cc
            cm = c < NC
            d = tl.load(cd_b + c, mask=cm, other=0)
            ok = cm & (d < S)
            cs = tl.load(cs_b + c, mask=ok, other=0.0)
            m = tl.load(m_b + d, mask=ok, other=0.0, cache_modifier=".cg")
            tl.atomic_add(sum_b + d, tl.exp(cs - m), mask=ok, sem="relaxed")
        tl.debug_barrier()
        for c0 in range(0, NC, CH):
            c = c0 + cc
            cm = c < NC
            d = tl.load(cd_b + c, mask=cm, other=0)
            ok = cm & (d < S)
            rep = tl.load(rep_b + d, mask=ok, other=-1, cache_modifier=".cg")
            keep = ok & (rep == c)
            m = tl.load(m_b + d, mask=keep, other=0.0, cache_modifier=".cg")
            sm = tl.load(sum_b + d, mask=keep, other=1.0, cache_modifier=".cg")
            lab = tl.load(lab_ptr + d, mask=keep, other=0)
            e = tl.load(em_t + lab, mask=keep, other=0.0)
            tl.store(cs_b + c, tl.where(keep, m + tl.log(sm) + e, NEG), mask=cm)
            tl.store(m_b + d, tl.full([CH], NEG, tl.float32), mask=keep)
            tl.store(sum_b + d, tl.zeros([CH], dtype=tl.float32), mask=keep)
        tl.debug_barrier()

    @triton.jit
    def _from_key(k):
        """Inverse of :func:`_orderable`."""
        return tl.where(k >= 0, k, k ^ 0x7FFFFFFF).to(tl.float32, bitcast=True)

    @triton.jit
    def _stats(n1, hi1, lo1, n2, hi2, lo2):
        return n1 + n2, tl.maximum(hi1, hi2), tl.minimum(lo1, lo2)

    @triton.jit
    def _add3(a1, b1, c1, a2, b2, c2):
        return a1 + a2, b1 + b2, c1 + c2

    @triton.jit
    def _search(cs_b, K, NC, spread, NP: tl.constexpr, FUSED: tl.constexpr):
        """The threshold of the K best of the NC scores in ``cs_b`` (``-inf`` = no
        candidate): ``(keys [NP], threshold key, count above it, kept count, a lower bound of
        the lowest kept score, best score, search steps)``. Every program of an utterance
        runs it on the same scores and gets the same answer (no communication)."""
        nn = tl.arange(0, NP)
        x = tl.load(cs_b + nn, mask=nn < NC, other=NEG, cache_modifier=".cg")
        fin = x > NEG
        key = tl.where(fin, _orderable(x), NEGK)
        # one reduction for the count of finite scores, the largest and the smallest key
        if FUSED:
            nfin, hik, lok = tl.reduce((fin.to(tl.int32), key, tl.where(fin, key, 2147483647)),
                                       0, _stats)
        else:  # (the interpreter runs a multi-operand reduce element by element: slow)
            nfin = tl.sum(fin.to(tl.int32), axis=0)
            hik = tl.max(key, axis=0)
            lok = tl.min(tl.where(fin, key, 2147483647), axis=0)
        mx = _from_key(hik)  # -inf when nothing is finite (then nothing is kept)
        many = nfin > K
        hi = tl.where(many, hik, NEGK).to(tl.int64)
        lo = tl.where(many, lok, NEGK).to(tl.int64)
        # first probe: the previous frame's spread below the new best (usually >= K above)
        gk = _orderable(mx - 1.25 * spread).to(tl.int64)
        gk = tl.minimum(tl.maximum(gk, lo), hi)
        cnt = tl.sum((key >= gk.to(tl.int32)).to(tl.int32), axis=0)
        ge = cnt >= K
        hi = tl.where(ge, tl.where(cnt == K, gk, hi), gk - 1)
        lo = tl.where(ge, gk, lo)
        steps = nfin * 0
        # the largest key thr with count(key >= thr) >= K, three probes per step (one
        # reduction); invariant count(key >= lo) >= K > count(key > hi); a probe that leaves
        # exactly K keys above ends the search
        while lo < hi:
            span = hi - lo
            m1 = lo + (span + 3) // 4
            m2 = lo + (span + 1) // 2
            m3 = lo + (3 * span + 3) // 4
            if FUSED:
                c1, c2, c3 = tl.reduce(((key >= m1.to(tl.int32)).to(tl.int32),
                                        (key >= m2.to(tl.int32)).to(tl.int32),
                                        (key >= m3.to(tl.int32)).to(tl.int32)), 0, _add3)
            else:
                c1 = tl.sum((key >= m1.to(tl.int32)).to(tl.int32), axis=0)
                c2 = tl.sum((key >= m2.to(tl.int32)).to(tl.int32), axis=0)
                c3 = tl.sum((key >= m3.to(tl.int32)).to(tl.int32), axis=0)
            hi = tl.where(c3 >= K, tl.where(c3 == K, m3, hi),
                          tl.where(c2 >= K, tl.where(c2 == K, m2, m3 - 1),
                                   tl.where(c1 >= K, tl.where(c1 == K, m1, m2 - 1), m1 - 1)))
            lo = tl.where(c3 >= K, m3, tl.where(c2 >= K, m2, tl.where(c1 >= K, m1, lo)))
            steps += 1
        thr = lo.to(tl.int32)
        cnt_gt = tl.sum((key > thr).to(tl.int32), axis=0)
        nsel = tl.minimum(nfin, K)
        low = tl.where(many, _from_key(thr), _from_key(lok))  # <= every kept score
        return key, thr, cnt_gt, nsel, low, mx, steps

    @triton.jit
    def _compact(key, thr, cnt_gt, nsel, cs_b, cd_b, lab_ptr, em_t, act_t, la_t, ek_t, S, K,
                 c_lo, c_hi, p, KP: tl.constexpr, NP: tl.constexpr, CH: tl.constexpr,
                 BP: tl.constexpr, pa, oarc_ptr, slot_t, arc_t, D: tl.constexpr):
        """Write the kept candidates among ``c_lo <= c < c_hi`` into the frame's slots: those
        above the threshold to ``[0, cnt_gt)``, the first ``K - cnt_gt`` equal to it (by
        candidate index) to ``[cnt_gt, K)``; the ranks start after the kept candidates below
        ``c_lo`` (counted on the key tile). Program ``p = 0`` also fills the free slots.
        ``BP`` (Viterbi): instead of the emission, each kept state's back-pointer, the slot
        of frame t-1 it came from and the arc taken (``pa`` = frame t-1's states; the four
        pointers after ``BP`` are unused without it)."""
        nn = tl.arange(0, NP)
        cc = tl.arange(0, CH)
        ii = tl.arange(0, KP)
        need = K - cnt_gt  # how many of the keys equal to thr are kept (first by index)
        before = nn < c_lo
        n_gt = tl.sum((before & (key > thr)).to(tl.int32), axis=0)
        n_eq = tl.sum((before & (key == thr) & (thr > NEGK)).to(tl.int32), axis=0)
        # one prefix sum per chunk: the states above thr and the first `need` equal to it
        for c0 in range(c_lo, c_hi, CH):
            c = c0 + cc
            cm = c < c_hi
            xc = tl.load(cs_b + c, mask=cm, other=NEG, cache_modifier=".cg")
            fc = xc > NEG
            kc = tl.where(fc, _orderable(xc), NEGK)
            gt = kc > thr
            eq = (kc == thr) & fc  # empty when thr = NEGK (all finite kept)
            packed = gt.to(tl.int32) + eq.to(tl.int32) * 65536  # both ranks in one scan
            rank = tl.cumsum(packed, axis=0)
            r_gt = n_gt + (rank & 65535)
            r_eq = n_eq + (rank >> 16)
            sel = gt | (eq & (r_eq <= need))
            pos = tl.where(gt, r_gt - 1, cnt_gt + r_eq - 1)
            d = tl.load(cd_b + c, mask=sel, other=0, cache_modifier=".cg")
            tl.store(act_t + pos, d.to(tl.int64), mask=sel)
            tl.store(la_t + pos, xc, mask=sel)
            if BP:
                slot = c // D
                s = tl.load(pa + slot, mask=sel, other=0)
                tl.store(slot_t + pos, slot.to(tl.int64), mask=sel)
                tl.store(arc_t + pos, tl.load(oarc_ptr + s * D + (c - slot * D), mask=sel,
                                              other=0), mask=sel)
            else:
                lab = tl.load(lab_ptr + d, mask=sel, other=0)
                e = tl.load(em_t + lab, mask=sel, other=0.0)
                tl.store(ek_t + pos, e, mask=sel)
            tot_c = tl.sum(packed, axis=0)
            n_gt += tot_c & 65535
            n_eq += tot_c >> 16
        free = (ii < K) & (ii >= nsel) & ((ii * 0 + p) == 0)
        tl.store(act_t + ii, tl.zeros([KP], dtype=tl.int64) + S, mask=free)
        tl.store(la_t + ii, tl.full([KP], NEG, tl.float32), mask=free)
        if not BP:
            tl.store(ek_t + ii, tl.zeros([KP], dtype=tl.float32), mask=free)

    @triton.jit
    def _pruned_fwd_kernel(em_ptr, lab_ptr, odst_ptr, ow_ptr, olab_ptr, fin_ptr, len_ptr,
                           act_ptr, la_ptr, ek_ptr, m_ptr, sum_ptr, rep_ptr, cd_ptr, cs_ptr,
                           flag_ptr, mx_ptr, tot_ptr, st_ptr, bar_ptr, T, V, S, K, wmax,
                           low_all, low_kept, D: tl.constexpr, KP: tl.constexpr,
                           NP: tl.constexpr, CH: tl.constexpr, VP: tl.constexpr,
                           FUSED: tl.constexpr, P: tl.constexpr, SYNC: tl.constexpr):
        # Program (p, b): P programs share utterance b. Each forms and accumulates its share
        # of the candidates, finds the (common) top-k threshold and compacts its share;
        # program 0 alone redoes a frame exactly when needed. Three barriers per frame.
        p = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        NC = K * D  # candidates per frame
        NCP = (NC + P - 1) // P
        c_lo = p * NCP
        c_hi = tl.minimum(NC, c_lo + NCP)
        S1 = S + 1
        em_b = em_ptr + b * T * V
        act_b = act_ptr + b * T * K
        la_b = la_ptr + b * T * K
        ek_b = ek_ptr + b * T * K
        m_b = m_ptr + b * S1
        sum_b = sum_ptr + b * S1
        rep_b = rep_ptr + b * S1
        cd_b = cd_ptr + b * NP
        cs_b = cs_ptr + b * NP
        flag_b = flag_ptr + b * T
        bar_b = bar_ptr + b
        ii = tl.arange(0, KP)
        im = ii < K
        vv = tl.arange(0, VP)
        # spread (max - min) of the kept scores of frame 0: first guess of the threshold
        l0 = tl.load(la_b + ii, mask=im, other=NEG)
        mx0 = tl.max(l0, axis=0)
        mn0 = tl.min(tl.where(l0 > NEG, l0, float("inf")), axis=0)
        spread = tl.where(mx0 > NEG, mx0 - mn0, 0.0)
        mx = mx0
        steps = L * 0
        redo = L * 0
        for t in range(1, L):
            pa = act_b + (t - 1) * K
            pl = la_b + (t - 1) * K
            em_t = em_b + t * V
            # U >= every candidate score: best kept score + best arc weight + best emission
            U = mx + wmax + tl.max(tl.load(em_t + vv, mask=vv < V, other=NEG), axis=0)
            _accumulate(pa, pl, odst_ptr, ow_ptr, olab_ptr, em_t, sum_b, cd_b, flag_b + t, S,
                        c_lo, c_hi, U, low_all, D, CH)
            tk.step_sync(bar_b, P * (3 * t - 2), SYNC)
            _take_sums(sum_b, cd_b, cs_b, S, c_lo, c_hi, U, CH)
            tk.step_sync(bar_b, P * (3 * t - 1), SYNC)
            # every program finds the same threshold; each compacts its own candidates
            low_z = tl.load(flag_b + t, cache_modifier=".cg")
            key, thr, cnt_gt, nsel, low, mxt, st = _search(cs_b, K, NC, spread, NP, FUSED)
            steps += st
            # exact to rounding when no exp underflowed (flag: some z < U - 80), or when every
            # kept score is >= U - 60 (what underflows, z < U - 87, is < e^-27 of any of them)
            exact = (low_z == 0) | ((nsel == K) & (low >= U - low_kept))
            if exact:
                _compact(key, thr, cnt_gt, nsel, cs_b, cd_b, lab_ptr, em_t, act_b + t * K,
                         la_b + t * K, ek_b + t * K, S, K, c_lo, c_hi, p, KP, NP, CH, False, pa,
                         pa, pa, pa, D)
            elif p == 0:  # wide beam: program 0 redoes the frame with a max per successor
                tl.debug_barrier()
                _scores_exact(pa, pl, odst_ptr, ow_ptr, lab_ptr, em_t, m_b, sum_b, rep_b, cd_b,
                              cs_b, S, NC, D, CH)
                key, thr, cnt_gt, nsel, low, mxt, st = _search(cs_b, K, NC, spread, NP, FUSED)
                _compact(key, thr, cnt_gt, nsel, cs_b, cd_b, lab_ptr, em_t, act_b + t * K,
                         la_b + t * K, ek_b + t * K, S, K, 0, NC, p, KP, NP, CH, False, pa, pa,
                         pa, pa, D)
                steps += st
                redo += 1
            spread = tl.where(nsel > 0, mxt - low, 0.0)
            if p == 0:
                tl.store(mx_ptr + b * T + t, mxt)
            # frame t's slots and best score must be visible before frame t+1 reads them
            tk.step_sync(bar_b, P * (3 * t), SYNC)
            mx = tl.load(mx_ptr + b * T + t, cache_modifier=".cg")
        if p == 0:
            # ---- total over the last frame; frames >= L repeat frame L-1
            last = (L - 1) * K
            a = tl.load(act_b + last + ii, mask=im, other=0, cache_modifier=".cg")
            a = tl.where(im, a, S)
            lv = tl.load(la_b + last + ii, mask=im, other=NEG, cache_modifier=".cg")
            ev = tl.load(ek_b + last + ii, mask=im, other=0.0, cache_modifier=".cg")
            v = lv + tl.load(fin_ptr + a)
            mv = tl.max(v, axis=0)
            mvs = tl.where(mv > NEG, mv, 0.0)
            tl.store(tot_ptr + b, mvs + tl.log(tl.sum(tl.exp(v - mvs), axis=0)))
            tl.store(st_ptr + 2 * b, steps)
            tl.store(st_ptr + 2 * b + 1, redo)
            for t in range(L, T):
                tl.store(act_b + t * K + ii, a, mask=im)
                tl.store(la_b + t * K + ii, lv, mask=im)
                tl.store(ek_b + t * K + ii, ev, mask=im)

    @triton.jit
    def _pruned_viterbi_kernel(em_ptr, lab_ptr, odst_ptr, ow_ptr, oarc_ptr, len_ptr, act_ptr,
                               la_ptr, slot_ptr, arc_ptr, m_ptr, rep_ptr, cd_ptr, cs_ptr, T, V,
                               S, K, D: tl.constexpr, KP: tl.constexpr, NP: tl.constexpr,
                               CH: tl.constexpr, FUSED: tl.constexpr):
        # :func:`uasr.graph.pruned.pruned_viterbi` for utterance b (one program): per frame
        # the candidates' best score per successor (atomic_max), one representative per
        # successor (the largest candidate index attaining it, atomic_max), its score plus
        # the successor's emission, then the forward's top-k search and compaction, which
        # also writes each kept state's back-pointer (slot, arc). Frames >= L: not written.
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        NC = K * D
        S1 = S + 1
        em_b = em_ptr + b * T * V
        act_b = act_ptr + b * T * K
        la_b = la_ptr + b * T * K
        slot_b = slot_ptr + b * T * K
        arc_b = arc_ptr + b * T * K
        m_b = m_ptr + b * S1
        rep_b = rep_ptr + b * S1
        cd_b = cd_ptr + b * NP
        cs_b = cs_ptr + b * NP
        ii = tl.arange(0, KP)
        cc = tl.arange(0, CH)
        l0 = tl.load(la_b + ii, mask=ii < K, other=NEG)
        mx0 = tl.max(l0, axis=0)
        spread = tl.where(mx0 > NEG, mx0 - tl.min(tl.where(l0 > NEG, l0, float("inf")), axis=0),
                          0.0)
        for t in range(1, L):
            pa = act_b + (t - 1) * K
            pl = la_b + (t - 1) * K
            em_t = em_b + t * V
            for c0 in range(0, NC, CH):  # candidates and the max per successor
                c = c0 + cc
                cm = c < NC
                slot = c // D
                s = tl.load(pa + slot, mask=cm, other=0).to(tl.int32)
                s = tl.where(cm, s, S)
                off = s * D + (c - slot * D)
                d = tl.load(odst_ptr + off, mask=cm, other=0)
                cs = tl.load(pl + slot, mask=cm, other=NEG) + tl.load(ow_ptr + off, mask=cm,
                                                                      other=NEG)
                ok = cm & (d < S) & (cs > NEG)
                d = tl.where(ok, d, S)
                tl.store(cd_b + c, d, mask=cm)
                tl.store(cs_b + c, cs, mask=cm)
                tl.atomic_max(m_b + d, cs, mask=ok, sem="relaxed")
            tl.debug_barrier()
            for c0 in range(0, NC, CH):  # the representative: the last candidate at the max
                c = c0 + cc
                cm = c < NC
                d = tl.load(cd_b + c, mask=cm, other=S)
                ok = cm & (d < S)
                cs = tl.load(cs_b + c, mask=ok, other=NEG)
                m = tl.load(m_b + d, mask=ok, other=0.0, cache_modifier=".cg")
                tl.atomic_max(rep_b + d, c, mask=ok & (cs == m), sem="relaxed")
            tl.debug_barrier()
            for c0 in range(0, NC, CH):  # its score; it also resets the scratch
                c = c0 + cc
                cm = c < NC
                d = tl.load(cd_b + c, mask=cm, other=S)
                ok = cm & (d < S)
                keep = ok & (tl.load(rep_b + d, mask=ok, other=-1, cache_modifier=".cg") == c)
                m = tl.load(m_b + d, mask=keep, other=0.0, cache_modifier=".cg")
                e = tl.load(em_t + tl.load(lab_ptr + d, mask=keep, other=0), mask=keep, other=0.0)
                tl.store(cs_b + c, tl.where(keep, m + e, NEG), mask=cm)
                tl.store(m_b + d, tl.full([CH], NEG, tl.float32), mask=keep)
                tl.store(rep_b + d, tl.full([CH], -1, tl.int32), mask=keep)
            tl.debug_barrier()
            key, thr, cnt_gt, nsel, low, mxt, st = _search(cs_b, K, NC, spread, NP, FUSED)
            _compact(key, thr, cnt_gt, nsel, cs_b, cd_b, lab_ptr, em_t, act_b + t * K,
                     la_b + t * K, la_b + t * K, S, K, 0, NC, 0, KP, NP, CH, True, pa,
                     oarc_ptr, slot_b + t * K, arc_b + t * K, D)
            spread = tl.where(nsel > 0, mxt - low, 0.0)
            tl.debug_barrier()

    @triton.jit
    def _pruned_trace_back_kernel(act_ptr, slot_ptr, arc_ptr, len_ptr, best_ptr, st_ptr,
                                  arcs_ptr, T, K):
        # One program per utterance: from its best last slot (< 0: no path, outputs stay 0)
        # back through the kept slots, writing states [T] and the arcs entering frames 1..
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        i = tl.load(best_ptr + b)
        if i >= 0:
            for j in range(0, L):
                t = L - 1 - j
                tl.store(st_ptr + b * T + t, tl.load(act_ptr + (b * T + t) * K + i))
                if t > 0:
                    tl.store(arcs_ptr + b * T + t - 1, tl.load(arc_ptr + (b * T + t) * K + i))
                    i = tl.load(slot_ptr + (b * T + t) * K + i)

    @triton.jit
    def _pruned_bwd_kernel(act_ptr, la_ptr, ek_ptr, odst_ptr, ow_ptr, fin_ptr, len_ptr, z_ptr,
                           g_ptr, post_ptr, buf_ptr, beta_ptr, bar_ptr, T, S, K,
                           D: tl.constexpr, DP: tl.constexpr, KP: tl.constexpr,
                           KC: tl.constexpr, P: tl.constexpr, SYNC: tl.constexpr):
        # Program (p, b) owns the kept slots [r_lo, r_hi) of every frame of utterance b: it
        # scatters their beta + Ek, meets the other programs (one barrier per frame), pulls
        # beta for its slots of the frame before. BUF is double-buffered by frame parity, so
        # a frame's scatter never overwrites entries that a slower program still pulls.
        p = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b).to(tl.int32)
        Z = tl.load(z_ptr + b)
        g = tl.load(g_ptr + b)
        S1 = S + 1
        KPP = (K + P - 1) // P
        r_lo = p * KPP
        r_hi = tl.minimum(K, r_lo + KPP)
        act_b = act_ptr + b * T * K
        la_b = la_ptr + b * T * K
        ek_b = ek_ptr + b * T * K
        post_b = post_ptr + b * T * K
        buf_b = buf_ptr + b * 2 * S1
        beta_b = beta_ptr + b * KP
        ii = tl.arange(0, KP)
        im = (ii >= r_lo) & (ii < r_hi)
        rr = tl.arange(0, KC)
        jj = tl.arange(0, DP)
        jm = jj < D
        a = tl.load(act_b + (L - 1) * K + ii, mask=im, other=0)
        a = tl.where(im, a, S)
        beta = tl.load(fin_ptr + a)  # final, -inf at the dummy state S
        for i in range(0, L - 1):
            t = L - 1 - i
            bt = buf_b + (t % 2) * S1
            a = tl.load(act_b + t * K + ii, mask=im, other=0)
            a = tl.where(im, a, S)
            lv = tl.load(la_b + t * K + ii, mask=im, other=NEG)
            tl.store(post_b + t * K + ii, tl.exp(lv + beta - Z) * g, mask=im)
            ev = tl.load(ek_b + t * K + ii, mask=im, other=0.0)
            # BUF[state] = (t << 32) | bits(beta + Ek): one 8-byte word, tagged with the frame
            # (entries of other frames are ignored, so nothing is ever reset)
            bits = (beta + ev).to(tl.int32, bitcast=True).to(tl.uint32).to(tl.int64)
            tl.store(bt + a, (tl.zeros([KP], dtype=tl.int64) + t) * 4294967296 + bits,
                     mask=im & (a < S))
            tk.step_sync(bar_ptr + b, P * (i + 1), SYNC)
            pa = act_b + (t - 1) * K
            for r0 in range(r_lo, r_hi, KC):
                rows = r0 + rr
                rm = rows < r_hi
                s = tl.load(pa + rows, mask=rm, other=0).to(tl.int32)
                s = tl.where(rm, s, S)
                m2 = rm[:, None] & jm[None, :]
                off = s[:, None] * D + jj[None, :]
                d = tl.load(odst_ptr + off, mask=m2, other=0)
                w = tl.load(ow_ptr + off, mask=m2, other=NEG)
                dm = m2 & (d < S)
                pv = tl.load(bt + d, mask=dm, other=-1, cache_modifier=".cg")
                tg = (pv >> 32).to(tl.int32)
                bv = pv.to(tl.int32).to(tl.float32, bitcast=True)
                x = tl.where(dm & (tg == t), w + bv, NEG)
                mx = tl.max(x, axis=1)
                mxs = tl.where(mx > NEG, mx, 0.0)
                nb = mxs + tl.log(tl.sum(tl.exp(x - mxs[:, None]), axis=1))
                tl.store(beta_b + rows, nb, mask=rm)
            tl.debug_barrier()
            beta = tl.load(beta_b + ii, mask=im, other=NEG)
        lv = tl.load(la_b + ii, mask=im, other=NEG)
        tl.store(post_b + ii, tl.exp(lv + beta - Z) * g, mask=im)


# ============================================================================ dispatch
def _mode() -> str:
    v = os.environ.get(ENV, "1").strip().lower()
    if v in ("0", "off", "false", "no"):
        return "off"
    return "force" if v == "force" else "auto"


def supported(em: Tensor, graph: Graph, k: int) -> bool:
    """True when the fused kernels can (and may) run this call: triton importable, not
    disabled, float32 emissions on CUDA (or any device with ``UASR_TRITON_PRUNED=force`` under
    ``TRITON_INTERPRET=1``), one shared graph on the emissions' device, ``min(k, S) * D <=
    MAX_CANDIDATES``."""
    mode = _mode()
    if mode == "off" or not HAVE_TRITON or (_DISABLED and mode != "force"):
        return False
    if em.dtype != torch.float32 or graph.is_batch or graph.num_states == 0:
        return False
    if not (em.is_cuda or (mode == "force" and _interpreting())):
        return False
    if graph.device != em.device:
        return False
    return min(k, graph.num_states) * out_arcs(graph).D <= MAX_CANDIDATES


def _fail(err: Exception, what: str) -> None:
    global _DISABLED
    if _mode() == "force":
        raise err
    _DISABLED = True
    warnings.warn(f"the fused Triton pruned {what} failed ({type(err).__name__}: {err}); "
                  f"using the torch pruned path from now on (set {ENV}=0 to skip the kernels)",
                  RuntimeWarning, stacklevel=3)


def maybe_forward(em: Tensor, lengths: Tensor, graph: Graph, k: int):
    """:func:`pruned_forward_triton` when :func:`supported`, else None (also after a failure,
    with a warning: the caller then runs the torch path)."""
    if (_DISABLED and _mode() != "force") or not supported(em, graph, k):
        return None
    try:
        return pruned_forward_triton(em, lengths, graph, k)
    except Exception as err:  # noqa: BLE001 - compile/launch failure: fall back loudly
        _fail(err, "forward")
        return None


def maybe_backward(ctx: PrunedContext, total: Tensor, g: Tensor, lengths: Tensor, graph: Graph,
                   V: int) -> Optional[Tensor]:
    if _DISABLED and _mode() != "force":
        return None
    try:
        return pruned_backward_triton(ctx, total, g, lengths, graph, V)
    except Exception as err:  # noqa: BLE001
        _fail(err, "backward")
        return None


# ============================================================================ launch
def _unique(cfgs: list[dict]) -> list[dict]:
    out = []
    for c in cfgs:
        if c not in out:
            out.append(c)
    return out


def fwd_configs(NP: int) -> list[dict]:
    """Launch options of the forward, the default first: candidate chunk ``CH``, warps, and
    ``P`` programs per utterance (each forms and accumulates 1/P of the candidates; program
    0 selects). The top-k tile holds NP / (32 * num_warps) keys per thread: keep that <= 32.
    """
    if _interpreting():  # the interpreter's cost is per op: few, large chunks
        return [{"CH": min(NP, 4096), "num_warps": 4, "P": 1}]
    opts = ((4096, 32, 1), (4096, 16, 1), (2048, 16, 1), (4096, 32, 2), (4096, 32, 4),
            (2048, 32, 4), (2048, 16, 4))
    out = [{"CH": min(ch, NP), "num_warps": nw, "num_stages": 1, "P": p} for ch, nw, p in opts
           if NP // (32 * nw) <= 32]
    return _unique(out) or [{"CH": min(2048, NP), "num_warps": 32, "num_stages": 1, "P": 1}]


def bwd_configs(KP: int, DP: int) -> list[dict]:
    """Launch options of the backward, the default first: slots per chunk ``KC``, warps, and
    ``P`` programs per utterance (each owns 1/P of the kept slots of every frame)."""
    if _interpreting():
        return [{"KC": max(1, min(KP, 4096 // DP)), "num_warps": 4, "P": 1}]
    out = []
    for tile, nw, p in ((4096, 8, 1), (4096, 16, 1), (2048, 8, 1), (2048, 4, 1), (4096, 8, 2),
                        (4096, 8, 4), (2048, 4, 4), (2048, 4, 8)):
        kc = max(1, min(KP // p, tile // DP))
        if kc * DP // (32 * nw) <= 64:
            out.append({"KC": kc, "num_warps": nw, "num_stages": 1, "P": p})
    return _unique(out) or [{"KC": 1, "num_warps": 16, "num_stages": 1, "P": 1}]


def _run(kernel, B: int, args: tuple, consts: dict, key: tuple, cands: list[dict],
         force: Optional[dict], work: int) -> None:
    """Launch on grid (P, B), ``P`` = the config's programs per utterance (default 1; > 1
    only compiled: the interpreter runs programs one after another, so a barrier between
    them would never open). Each launch gets fresh barrier counters."""
    from uasr.graph import triton_kernels as tk  # the shared launcher: tuning on CUDA

    def launch(cfg: dict) -> None:
        P = cfg.get("P", 1)
        if P > 1 and _interpreting():
            raise ValueError("P > 1 programs per utterance needs a compiled kernel")
        bar = torch.zeros(B, dtype=torch.int32, device=args[0].device)
        kernel[(P, B)](*args, bar_ptr=bar, **consts, **{**cfg, "P": P}, SYNC=P > 1)

    if force is not None:
        launch(force)
        return
    tk._launch(launch, key, cands, work, args[0].is_cuda)


class _Tables:
    """Per-graph tables for the kernels: out-arc successors ``[S+1, D]`` (padding S), their
    labels ``[S+1, D]``, the state labels ``[S+1]`` (padding 0), all int32; the arc ids."""

    def __init__(self, graph: Graph):
        O = out_arcs(graph)
        self.D = O.D
        self.odst = O.dst.to(torch.int32).contiguous()
        self.lab = torch.cat([graph.labels, graph.labels.new_zeros(1)]).to(torch.int32)
        self.olab = self.lab[O.dst].contiguous()  # [S+1, D] label of each out-arc's successor
        self.oarc = O.arc.contiguous()  # [S+1, D] int64 arc ids (padding: A)


def _tables(graph: Graph) -> _Tables:
    key = ("triton_pruned_tables", graph.device)
    if key not in graph._cache:
        graph._cache[key] = _Tables(graph)
    return graph._cache[key]


def _out_weights(graph: Graph) -> tuple[Tensor, float]:
    """``([S+1, D]`` float32 out-arc weights (-inf on padding arcs), largest finite weight)``,
    cached while the same memory holds the same weights (as triton_kernels._weights)."""
    wt = graph.weights
    ver = (wt.data_ptr(), wt._version, tuple(wt.shape))
    key = ("triton_pruned_weights", graph.device)
    hit = graph._cache.get(key)
    if hit is not None and hit[0] == ver:
        return hit[1]
    O = out_arcs(graph)
    w = wt.detach().to(torch.float32)
    fin = w[torch.isfinite(w)]
    wmax = float(fin.max()) if fin.numel() else NEG_INF
    ow = torch.cat([w, w.new_full((1,), NEG_INF)])[O.arc].contiguous()
    graph._cache[key] = (ver, (ow, wmax), wt.detach())
    return ow, wmax


def _prepare(emissions: Tensor, graph: Graph, k: int) -> tuple[Tensor, int, _Tables, int, int]:
    """Checks shared by the fused forward and Viterbi: ``(contiguous emissions, k clipped to
    S, the graph's tables, NP = candidate tile, KP = slot tile)``."""
    if not HAVE_TRITON:
        raise RuntimeError("the fused pruned path needs the triton package")
    if emissions.dtype != torch.float32:
        raise ValueError(f"the fused pruned kernels compute in float32, got {emissions.dtype}")
    k = min(int(k), graph.num_states)
    tb = _tables(graph)
    NC = k * tb.D
    if NC > MAX_CANDIDATES:
        raise ValueError(f"k * D = {NC} > {MAX_CANDIDATES}: use the torch pruned path")
    return emissions.contiguous(), k, tb, _next_pow2(NC, 16), _next_pow2(k, 16)


def pruned_forward_triton(emissions: Tensor, lengths: Tensor, graph: Graph, k: int):
    """The fused pruned forward: ``(total [B], PrunedContext)`` as
    :func:`uasr.graph.pruned.pruned_forward` (``emissions`` float32 ``[B, T, V]`` with the
    padding frames zeroed, as score.py passes them)."""
    em, k, tb, NP, KP = _prepare(emissions, graph, k)
    B, T, V = em.shape
    S, D, dev = graph.num_states, tb.D, em.device
    init = graph.init.detach().to(torch.float32)
    final = torch.cat([graph.final.detach().to(torch.float32),
                       graph.final.new_full((1,), NEG_INF).to(torch.float32)]).contiguous()
    ow, wmax = _out_weights(graph)

    act = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    la = torch.empty(B, T, k, dtype=torch.float32, device=dev)
    Ek = torch.empty(B, T, k, dtype=torch.float32, device=dev)
    # frame 0 exactly as the torch path (same torch.topk call)
    e0 = em[:, 0, graph.labels]
    v, i = torch.topk(init + e0, k, dim=1)
    act[:, 0], la[:, 0], Ek[:, 0] = torch.where(torch.isfinite(v), i, S), v, e0.gather(1, i)

    m = torch.full((B, S + 1), NEG_INF, dtype=torch.float32, device=dev)
    ssum = torch.zeros(B, S + 1, dtype=torch.float32, device=dev)
    rep = torch.empty(B, S + 1, dtype=torch.int32, device=dev)
    cd = torch.empty(B, NP, dtype=torch.int32, device=dev)
    cs = torch.empty(B, NP, dtype=torch.float32, device=dev)
    flag = torch.zeros(B, T, dtype=torch.int32, device=dev)
    mxs = torch.empty(B, T, dtype=torch.float32, device=dev)  # best kept score per frame
    total = torch.empty(B, dtype=torch.float32, device=dev)
    stats = torch.zeros(B, 2, dtype=torch.int32, device=dev)
    lens = lengths.to(device=dev, dtype=torch.int64).contiguous()
    fused = (not _interpreting()) if FUSED_REDUCE is None else FUSED_REDUCE
    _run(_pruned_fwd_kernel, B,
         (em, tb.lab, tb.odst, ow, tb.olab, final, lens, act, la, Ek, m, ssum, rep, cd, cs, flag,
          mxs, total, stats),
         {"T": T, "V": V, "S": S, "K": k, "wmax": wmax, "low_all": float(FAST_LOW[0]),
          "low_kept": float(FAST_LOW[1]), "D": D, "KP": KP, "NP": NP, "VP": _next_pow2(V, 16),
          "FUSED": fused},
         ("pruned_fwd", D, NP, fused, tk.batch_bucket(B)), fwd_configs(NP), FORCE_FWD,
         B * T * k * D)
    STATS["steps"], STATS["redone"] = stats[:, 0], stats[:, 1]
    return total, PrunedContext(act, la, Ek)


def pruned_viterbi_triton(emissions: Tensor, lengths: Tensor, graph: Graph, k: int
                          ) -> tuple[Tensor, Tensor, Tensor]:
    """The fused :func:`uasr.graph.pruned.pruned_viterbi` plus its trace-back: ``(scores [B],
    states [B, T], arcs [B, T])`` on the device, as score.py's ``_pruned_paths`` (``arcs[b,
    t - 1]`` enters frame ``t``; 0 at or beyond a length and where ``scores`` is -inf).
    ``emissions`` float32 with the padding frames zeroed (score.py passes them so)."""
    em, k, tb, NP, KP = _prepare(emissions, graph, k)
    B, T, V = em.shape
    S, D, dev = graph.num_states, tb.D, em.device
    ow, _ = _out_weights(graph)
    act = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    la = torch.empty(B, T, k, dtype=torch.float32, device=dev)
    slot = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    arc = torch.empty(B, T, k, dtype=torch.int64, device=dev)
    v, i = torch.topk(graph.init.detach().to(torch.float32) + em[:, 0, graph.labels], k, dim=1)
    act[:, 0], la[:, 0] = torch.where(torch.isfinite(v), i, S), v
    m = torch.full((B, S + 1), NEG_INF, dtype=torch.float32, device=dev)
    rep = torch.full((B, S + 1), -1, dtype=torch.int32, device=dev)
    cd = torch.empty(B, NP, dtype=torch.int32, device=dev)
    cs = torch.empty(B, NP, dtype=torch.float32, device=dev)
    lens = lengths.to(device=dev, dtype=torch.int64).contiguous()
    fused = (not _interpreting()) if FUSED_REDUCE is None else FUSED_REDUCE
    args = (em, tb.lab, tb.odst, ow, tb.oarc, lens, act, la, slot, arc, m, rep, cd, cs, T, V, S,
            k)
    consts = {"D": D, "KP": KP, "NP": NP, "FUSED": fused}
    from uasr.graph import triton_kernels as tk

    def launch(cfg: dict) -> None:
        _pruned_viterbi_kernel[(B,)](*args, **consts, **{n: v for n, v in cfg.items() if n != "P"})

    if FORCE_FWD is not None:  # one program per utterance: a forced split is ignored
        launch(FORCE_FWD)
    else:
        tk._launch(launch, ("pruned_viterbi", D, NP, fused, tk.batch_bucket(B)),
                   [c for c in fwd_configs(NP) if c["P"] == 1] or
                   [{"CH": min(2048, NP), "num_warps": 32, "num_stages": 1}], B * T * k * D,
                   em.is_cuda)
    rows, last = torch.arange(B, device=dev), lens - 1
    fin = la[rows, last] + torch.cat([graph.final.detach().to(torch.float32),
                                      la.new_full((1,), NEG_INF)])[act[rows, last]]
    scores, best = fin.max(dim=1)
    best = torch.where(torch.isfinite(scores), best, -1).contiguous()
    states = torch.zeros(B, T, dtype=torch.int64, device=dev)
    arcs = torch.zeros_like(states)
    _pruned_trace_back_kernel[(B,)](act, slot, arc, lens, best, states, arcs, T, k, num_warps=1)
    return scores, states, arcs


def maybe_viterbi(em: Tensor, lengths: Tensor, graph: Graph, k: int
                  ) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """:func:`pruned_viterbi_triton` when :func:`supported`, else None (also after a
    failure, with a warning: the caller then runs the torch path)."""
    if not supported(em, graph, k):
        return None
    try:
        return pruned_viterbi_triton(em, lengths, graph, k)
    except Exception as err:  # noqa: BLE001 - compile/launch failure: fall back loudly
        _fail(err, "Viterbi")
        return None


def pruned_backward_triton(ctx: PrunedContext, total: Tensor, g: Tensor, lengths: Tensor,
                           graph: Graph, V: int) -> Tensor:
    """Gradient w.r.t. the emissions ``[B, T, V]`` over the kept lattice of ``ctx`` (as the
    first output of :func:`uasr.graph.pruned.pruned_backward`); ``total`` must be finite
    (score.py passes 0 with ``g = 0`` for utterances without a path)."""
    if not HAVE_TRITON:
        raise RuntimeError("the fused pruned path needs the triton package")
    act, la, Ek = ctx.act.contiguous(), ctx.la.contiguous(), ctx.Ek.contiguous()
    B, T, k = act.shape
    S = graph.num_states
    dev = act.device
    tb = _tables(graph)
    D = tb.D
    KP, DP = _next_pow2(k, 16), _next_pow2(D, 2)
    final = torch.cat([graph.final.detach().to(torch.float32),
                       graph.final.new_full((1,), NEG_INF).to(torch.float32)]).contiguous()
    ow, wmax = _out_weights(graph)
    post = torch.zeros(B, T, k, dtype=torch.float32, device=dev)
    buf = torch.full((B, 2, S + 1), -1, dtype=torch.int64, device=dev)  # tag -1: no frame
    beta = torch.empty(B, KP, dtype=torch.float32, device=dev)
    lens = lengths.to(device=dev, dtype=torch.int64).contiguous()
    Z = total.to(torch.float32).contiguous()
    gg = g.to(torch.float32).contiguous()
    _run(_pruned_bwd_kernel, B,
         (act, la, Ek, tb.odst, ow, final, lens, Z, gg, post, buf, beta),
         {"T": T, "S": S, "K": k, "D": D, "DP": DP, "KP": KP},
         ("pruned_bwd", D, KP, tk.batch_bucket(B)),
         bwd_configs(KP, DP), FORCE_BWD,
         B * T * k * D)
    lab = tb.lab.to(torch.int64)[act]  # [B, T, k]; the dummy state S has label 0, post 0
    return torch.zeros(B, T, V, dtype=torch.float32, device=dev).scatter_add_(2, lab, post)
