"""Phoneme-cipher decipherment: learn q(symbol | phone) from cipher text and a phone LM alone.

    uasr decipher train  --lm phone3.arpa --cipher train.sym --num-symbols 100000 \\
                         --optimizer em --exp-dir exp/cipher/em_3_1e5
    uasr decipher decode --lm phone3.arpa --exp-dir exp/cipher/em_3_1e5 \\
                         --cipher test.sym --phones test.phn

The loss is the paper's sequence-level CE, ``-log sum_c p_LM(c) prod_t q(x_t | c_t)`` with one
phone per symbol (one_to_one topology), and q a ``table`` emission (each row a distribution over
symbols). ``--optimizer em`` re-estimates q in closed form from the posterior occupancies (the
gradient of the total score w.r.t. the log-emissions); ``adam`` follows the same gradient on
the table's logits. ``--restarts R`` runs R random initialisations side by side (one batch) and
keeps the one with the best training likelihood; the test text never takes part in training
or in the choice.

Forward-backward backends:
- ``dense`` (orders 2-3, exact): the LM as a ``(C+1) x C x C`` table (``<s>`` as a history
  slot), one batched matmul per position in scaled probability space.
- ``graph``: :func:`uasr.graph.total_score` on ``ngram_graph(lm, phones, one_to_one())``
  (``--beam`` for the pruned path of 4-grams).
- ``preselect`` (any order, approximate): every symbol keeps its ``--preselect`` most likely
  phones under the initial model (``--init-from``, e.g. the 3-gram solution; when decoding,
  under the decoded model), and the exact DP runs over those candidates (Nuhn & Ney's
  "preselection"); cost ``m^n`` per symbol.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from uasr.lang.phones import ARPABET39
from uasr.lm.arpa import NgramLM, read_arpa

COMMAND = "decipher"
HELP = "learn a phoneme cipher's emission table from cipher text and a phone LM (EM / Adam)"
BOS, EOS = "<s>", "</s>"
Tensor = torch.Tensor
# A forward-backward maps (log-emissions [B, T, C], lengths [B], symbols [B, T]) to per-sequence
# log totals [B] and phone posteriors [B, T, C]; a Viterbi to the best phone sequences.
FB = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
Viterbi = Callable[[Tensor, Tensor, Tensor], list[list[int]]]


# ---------------------------------------------------------------------------- data
def read_cipher(path: Path, num_symbols: int = 0) -> list[list[int]]:
    """Sentences of symbol ids; with ``num_symbols`` the shortest prefix (whole sentences)
    holding at least that many symbols."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such cipher file; run the cipher recipe's stage 2")
    out, n = [], 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if num_symbols and n >= num_symbols:
                break
            try:
                ids = [int(t) for t in line.split()]
            except ValueError:
                raise SystemExit(f"{path}:{lineno}: expected integer symbol ids") from None
            if ids:
                out.append(ids)
                n += len(ids)
    if num_symbols and n < num_symbols:
        raise SystemExit(f"{path}: only {n} symbols, {num_symbols} asked; lower --num-symbols")
    return out


def batches(sents: Sequence[Sequence[int]], max_tokens: int) -> list[tuple[Tensor, Tensor]]:
    """Length-sorted padded batches ``(x [B, T], lengths [B])`` of at most ``max_tokens``
    padded symbols each (sorting keeps padding small)."""
    order = sorted(range(len(sents)), key=lambda i: len(sents[i]))
    out, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * len(sents[i]) > max_tokens:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    result = []
    for idx in out:
        T = max(len(sents[i]) for i in idx)
        x = torch.zeros(len(idx), T, dtype=torch.int64)
        for r, i in enumerate(idx):
            x[r, :len(sents[i])] = torch.tensor(sents[i])
        result.append((x, torch.tensor([len(sents[i]) for i in idx])))
    return result


# ---------------------------------------------------------------------------- LM tables
def lm_table(lm: NgramLM, phones: Sequence[str], order: int) -> tuple[Tensor, Tensor]:
    """Dense log-probabilities over histories of ``order - 1`` slots, each a phone or ``<s>``
    (index C; only left-padding patterns are meaningful): ``logp[h_1..h_{n-1}, c]`` and
    ``log p(</s> | h)`` as ``eos[h]``. Back-off is resolved by :meth:`NgramLM.logprob`."""
    C = len(phones)
    toks = list(phones) + [BOS]
    shape = (C + 1,) * (order - 1)
    logp = torch.full(shape + (C,), -math.inf, dtype=torch.float64)
    eos = torch.full(shape, -math.inf, dtype=torch.float64)
    for h in itertools.product(range(C + 1), repeat=order - 1):
        k = 0
        while k < len(h) and h[k] == C:
            k += 1
        if C in h[k:]:
            continue  # <s> after a phone: not a history
        hist = [BOS] + [toks[i] for i in h[k:]] if k else [toks[i] for i in h]
        logp[h] = torch.tensor([lm.logprob(p, hist) for p in phones], dtype=torch.float64)
        eos[h] = lm.logprob(EOS, hist)
    return logp, eos


def cached_lm_table(lm: NgramLM, phones: Sequence[str], order: int,
                    cache: Path | None) -> tuple[Tensor, Tensor]:
    """:func:`lm_table`, kept in ``cache`` (a 4-gram table takes ~10-30 s to build)."""
    if cache is not None and cache.is_file():
        saved = torch.load(cache)
        if saved["phones"] == list(phones) and saved["order"] == order:
            return saved["logp"], saved["eos"]
    logp, eos = lm_table(lm, phones, order)
    if cache is not None:
        tmp = cache.with_name(cache.name + ".tmp")
        torch.save({"phones": list(phones), "order": order, "logp": logp, "eos": eos}, tmp)
        tmp.replace(cache)
    return logp, eos


# ---------------------------------------------------------------------------- dense DP
class DenseTrigram:
    """Exact forward-backward / Viterbi for one_to_one x an LM of order <= 3.

    States after position t are (previous phone or ``<s>``, current phone): ``[C+1, C]``.
    Scaled probability space, renormalised every position (log scales kept in float64).
    """

    def __init__(self, lm: NgramLM, phones: Sequence[str], lm_scale: float = 1.0):
        if lm.order > 3:
            raise ValueError("the dense backend handles LM orders <= 3; use --backend "
                             "preselect or graph (with --beam) for higher orders")
        C = self.C = len(phones)
        logp, eos = lm_table(lm, phones, 3)  # a lower-order LM backs off exactly
        logp, eos = logp * lm_scale, eos * lm_scale
        self.start = logp[C, C].exp().float()  # p(c | <s>)           [C]
        self.P = logp[:, :C].exp().float()  # p(c | a, b), a may be <s>  [C+1, C, C]
        self.Pt = self.P.permute(1, 0, 2).contiguous()  # [b, a, c]
        self.fin = eos[:, :C].exp().float()  # p(</s> | a, b)          [C+1, C]
        self.logP = logp[:, :C].float()
        self.log_start = logp[C, C].float()
        self.log_fin = eos[:, :C].float()

    def __call__(self, logq: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``logq [B, T, C]`` log-emissions -> (log totals [B], posteriors [B, T, C]).

        Layouts keep every batched matmul contiguous: forward states ``[p, B, a]`` (current
        phone p, previous a), backward states ``[p, a, B]``.
        """
        B, T, C = logq.shape
        shift = logq.amax(-1)  # per-position scaling of the emissions, undone in the total
        e = torch.exp(logq - shift.unsqueeze(-1)).permute(1, 2, 0).contiguous()  # [T, C, B]
        alphas = logq.new_zeros(T, C, B, C + 1)
        logscale = shift.double().masked_fill(
            torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1), 0.0).sum(1)
        a = alphas[0]
        a[:, :, C] = self.start.unsqueeze(1) * e[0]
        for t in range(T):
            if t:
                out = torch.bmm(alphas[t - 1], self.Pt)  # [p, B, c]
                alphas[t, :, :, :C] = out.permute(2, 1, 0) * e[t].unsqueeze(-1)
            s = alphas[t].sum((0, 2))
            s = torch.where((t < lengths) & (s > 0), s, torch.ones_like(s))
            alphas[t] /= s.view(1, B, 1)
            logscale += torch.where(t < lengths, s.double().log(), 0.0)
        rows = torch.arange(B)
        last = lengths - 1
        a_last = alphas[last, :, rows]  # [B, p, a]
        z = (a_last * self.fin.T.unsqueeze(0)).sum((1, 2))
        logz = logscale + z.double().log()
        # backward: beta[p, a, B] over the same states, renormalised per position
        post = logq.new_zeros(T, C, B)
        finT = self.fin.T.unsqueeze(-1)  # [p, a, 1]
        beta = logq.new_zeros(C, C + 1, B)
        for t in range(T - 1, -1, -1):
            beta = torch.where((t == last).view(1, 1, B), finT, beta)
            g = (alphas[t] * beta.transpose(1, 2)).sum(-1)  # [p, B]
            gs = g.sum(0, keepdim=True)
            post[t] = torch.where((t < lengths).view(1, B), g / torch.where(gs > 0, gs, 1.0), 0.0)
            if t == 0:
                break
            v = (beta[:, :C] * e[t].unsqueeze(1)).transpose(0, 1).contiguous()  # [p, c, B]
            nb = torch.bmm(self.Pt, v)  # [p, a, B]
            m = nb.amax((0, 1), keepdim=True)
            beta = nb / torch.where(m > 0, m, torch.ones_like(m))
        return logz.to(logq.dtype), post.permute(2, 0, 1)

    def viterbi(self, logq: Tensor, lengths: Tensor) -> list[list[int]]:
        """Best phone sequence per row (max-product in log space)."""
        B, T, C = logq.shape
        lq = logq.permute(1, 2, 0).contiguous()  # [T, C, B]
        L = self.logP.permute(1, 0, 2).unsqueeze(1)  # [p, 1, a, c]
        bp = torch.zeros(T, C, B, C, dtype=torch.int64)  # [t][p_{t-1}, B, p_t] -> p_{t-2}
        d = logq.new_full((C, B, C + 1), -math.inf)
        d[:, :, C] = (self.log_start.unsqueeze(1) + lq[0])
        last = lengths - 1
        ends = [0] * B
        finT = self.log_fin.T.unsqueeze(1)  # [p, 1, a]
        for t in range(T):
            if t:
                best, arg = (d.unsqueeze(-1) + L).max(2)  # [p, B, c]
                bp[t] = arg
                nd = logq.new_full((C, B, C + 1), -math.inf)
                nd[:, :, :C] = best.permute(2, 1, 0) + lq[t].unsqueeze(-1)
                d = torch.where((t < lengths).view(1, B, 1), nd, d)
            for b in torch.nonzero(last == t).flatten().tolist():
                ends[b] = int((d[:, b] + finT[:, 0]).argmax())  # index p * (C+1) + a
        out = []
        for b in range(B):
            c, a = divmod(ends[b], C + 1)
            seq = [c]
            for t in range(int(last[b]), 0, -1):
                prev = int(bp[t, a, b, c])
                seq.append(a)
                a, c = prev, a
            out.append(seq[::-1])
        return out


# ---------------------------------------------------------------------------- preselection
class Preselect:
    """Exact DP over a preselected lattice, any LM order: symbol ``x`` may only be read as its
    ``m`` most likely phones under ``init_logq`` (by ``q(x | c) p(c)``, p the LM unigram).

    States are the candidate slots of the last ``n - 1`` positions (``m^(n-1)`` per position;
    positions before the sentence are ``<s>``). Log space; cost ``m^n`` per symbol.
    """

    def __init__(self, lm: NgramLM, phones: Sequence[str], init_logq: Tensor, m: int,
                 lm_scale: float = 1.0, cache: Path | None = None):
        self.n, self.C, self.m = lm.order, len(phones), m
        logp, eos = cached_lm_table(lm, phones, self.n, cache)
        self.logp = (logp * lm_scale).float().reshape(-1)
        self.eos = (eos * lm_scale).float().reshape(-1)
        unigram = torch.tensor([lm.logprob(p, ()) for p in phones])
        self.cand = (init_logq.t() + unigram).topk(m, dim=1).indices  # [K, m]
        C, n = self.C, self.n
        self.strides = [C * (C + 1) ** (n - 2 - i) for i in range(n - 1)] + [1]
        self.eos_strides = [(C + 1) ** (n - 2 - i) for i in range(n - 1)]

    def _grid(self, ph: list[Tensor], strides: list[int]) -> Tensor:
        """Flat table index of every slot combination: ``ph[j]`` is ``[B, m]`` phone ids."""
        B, m, k = ph[0].shape[0], self.m, len(ph)
        idx = torch.zeros((B,) + (m,) * k, dtype=torch.int64)
        for j, (p, st) in enumerate(zip(ph, strides)):
            shape = [B] + [1] * k
            shape[j + 1] = m
            idx = idx + (p * st).view(shape)
        return idx.reshape(B, -1)

    def _lattice(self, logq: Tensor, x: Tensor):
        B, T = x.shape
        n, m, C = self.n, self.m, self.C
        cand = self.cand[x]  # [B, T, m]
        e = logq.gather(2, cand)
        pad = torch.full((B, n - 1, m), C, dtype=torch.int64)
        candp = torch.cat([pad, cand], 1)  # position t is candp[:, t + n - 1]
        return cand, e, candp

    def _weights(self, candp: Tensor, t: int) -> Tensor:
        """LM log-weights ``[B, m^n]`` of moving into position t (slots t-n+1 .. t)."""
        return self.logp[self._grid([candp[:, t + j] for j in range(self.n)], self.strides)]

    def _eos(self, candp: Tensor, t: int) -> Tensor:
        return self.eos[self._grid([candp[:, t + 1 + j] for j in range(self.n - 1)],
                                   self.eos_strides)]

    def _init(self, B: int) -> Tensor:
        a = torch.full((B, self.m ** (self.n - 1)), -math.inf)
        a[:, 0] = 0.0  # all history slots on <s> (slot 0 of the padding positions)
        return a

    def forward_backward(self, logq: Tensor, lengths: Tensor, x: Tensor):
        B, T, C = logq.shape
        m, n = self.m, self.n
        cand, e, candp = self._lattice(logq, x)
        M = m ** (n - 2)
        alphas, Ws = [], []
        a = self._init(B)
        logz = torch.full((B,), -math.inf)
        for t in range(T):
            W = self._weights(candp, t)
            Ws.append(W)
            na = torch.logsumexp(a.view(B, m, M, 1) + W.view(B, m, M, m), 1).reshape(B, -1)
            na = na + e[:, t].repeat(1, M)
            a = torch.where((t < lengths).view(B, 1), na, a)
            alphas.append(a)
            done = t == lengths - 1
            if bool(done.any()):
                z = torch.logsumexp(a + self._eos(candp, t), 1)
                logz = torch.where(done, z, logz)
        post = logq.new_zeros(B, T, C)
        beta = logq.new_zeros(B, m ** (n - 1))
        for t in range(T - 1, -1, -1):
            beta = torch.where((t == lengths - 1).view(B, 1), self._eos(candp, t), beta)
            g = (alphas[t] + beta - logz.unsqueeze(1)).view(B, M, m)
            p = torch.exp(torch.logsumexp(g, 1))
            p = torch.where((t < lengths).view(B, 1), p, torch.zeros_like(p))
            post[:, t].scatter_add_(1, cand[:, t], p)
            if t == 0:
                break
            v = (beta + e[:, t].repeat(1, M)).view(B, 1, M, m)
            beta = torch.logsumexp(Ws[t].view(B, m, M, m) + v, 3).reshape(B, -1)
        return logz, post

    def viterbi(self, logq: Tensor, lengths: Tensor, x: Tensor) -> list[list[int]]:
        B, T, C = logq.shape
        m, n = self.m, self.n
        cand, e, candp = self._lattice(logq, x)
        M = m ** (n - 2)
        a = self._init(B)
        bps = []
        ends = torch.zeros(B, dtype=torch.int64)
        for t in range(T):
            W = self._weights(candp, t)
            best, arg = (a.view(B, m, M, 1) + W.view(B, m, M, m)).max(1)
            bps.append(arg.reshape(B, -1))
            na = best.reshape(B, -1) + e[:, t].repeat(1, M)
            a = torch.where((t < lengths).view(B, 1), na, a)
            done = t == lengths - 1
            if bool(done.any()):
                ends = torch.where(done, (a + self._eos(candp, t)).argmax(1), ends)
        out = []
        for b in range(B):
            s, seq = int(ends[b]), []
            for t in range(int(lengths[b]) - 1, -1, -1):
                seq.append(int(cand[b, t, s % m]))
                first = int(bps[t][b, s])  # slot of position t-n+1
                s = first * M + s // m  # the state at t-1: slots t-n+1 .. t-1
            out.append(seq[::-1])
        return out


# ---------------------------------------------------------------------------- backends
def make_fb(backend: str, lm: NgramLM, phones: Sequence[str], lm_scale: float = 1.0,
            beam: int | None = None, init_logq: Tensor | None = None,
            preselect: int = 4, cache: Path | None = None) -> tuple[FB, Viterbi]:
    """(forward-backward, viterbi) for one_to_one x ``lm``."""
    if backend == "dense":
        d = DenseTrigram(lm, phones, lm_scale)
        return (lambda em, lengths, x: d(em, lengths)), \
            (lambda em, lengths, x: d.viterbi(em, lengths))
    if backend == "preselect":
        if init_logq is None:
            raise SystemExit("--backend preselect needs a model to preselect with (--init-from)")
        ps = Preselect(lm, phones, init_logq, preselect, lm_scale, cache)
        return ps.forward_backward, ps.viterbi
    from uasr.graph import ngram_graph, one_to_one, total_score, viterbi

    graph = ngram_graph(lm, list(phones), one_to_one(), expand="minimal" if lm.order > 3
                        else "full")
    if lm_scale != 1.0:
        graph.weights, graph.init, graph.final = (graph.weights * lm_scale,
                                                  graph.init * lm_scale, graph.final * lm_scale)

    def fb(logq: Tensor, lengths: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():  # the posteriors are the gradient of the total score
            em = logq.detach().requires_grad_()
            tot = total_score(em, lengths, graph, beam=beam, no_path="zero")
            post, = torch.autograd.grad(tot.sum(), em)
        return tot.detach(), post

    def vit(logq: Tensor, lengths: Tensor, x: Tensor) -> list[list[int]]:
        res = viterbi(logq, lengths, graph)
        return [a.tolist() for a in res.alignments]

    return fb, vit


# ---------------------------------------------------------------------------- training
def gather_emissions(logq: Tensor, x: Tensor) -> Tensor:
    """``logq [R, C, K]`` (log q(symbol | phone) per restart), ``x [B, T]`` -> ``[R*B, T, C]``."""
    R, C, K = logq.shape
    return logq.transpose(1, 2)[:, x].reshape(R * x.shape[0], x.shape[1], C)


def run_epoch(fb: FB, logq: Tensor | Callable[[], Tensor], data: list[tuple[Tensor, Tensor]],
              counts: Tensor | None = None, step: Callable[[Tensor, int], None] | None = None,
              ) -> Tensor:
    """One pass: returns the training log-likelihood per restart ``[R]``. With ``counts``
    ``[R, K, C]`` accumulates posterior occupancies (EM); with ``step`` calls it per batch with
    d(loglik)/d(emissions) (Adam)."""
    table = logq if callable(logq) else (lambda: logq)  # adam: re-normalise after each step
    R = table().shape[0]
    ll = torch.zeros(R, dtype=torch.float64)
    for x, lengths in data:
        B, T = x.shape
        em = gather_emissions(table() if step is not None else table().detach(), x)
        lens = lengths.repeat(R)
        with torch.no_grad():
            logz, post = fb(em.detach(), lens, x.repeat(R, 1))
        ll += logz.double().view(R, B).sum(1)
        if counts is not None:
            valid = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).flatten()
            xs = x.flatten()[valid]
            p = post.reshape(R, B * T, -1)[:, valid]
            counts.index_add_(1, xs, p.to(counts.dtype))
        if step is not None:
            step(em, post.reshape(em.shape), int(lengths.sum()))
    return ll


def table_cache(lm_path: Path) -> Path:
    """The dense-table cache of an ARPA file (rebuilt when the ARPA is newer)."""
    cache = lm_path.with_name(lm_path.name + ".table.pt")
    if cache.is_file() and cache.stat().st_mtime < lm_path.stat().st_mtime:
        cache.unlink()
    return cache


def train(a: argparse.Namespace, argv: list[str]) -> int:
    torch.manual_seed(a.seed)
    lm = read_arpa(a.lm)
    phones = list(ARPABET39)
    C = len(phones)
    sents = read_cipher(a.cipher, a.num_symbols)
    top = max(max(s) for s in sents)
    K = a.vocab_size or top + 1
    if top >= K:
        raise SystemExit(f"{a.cipher}: symbol id {top} >= --vocab-size {K}")
    n_tok = sum(map(len, sents))
    data = batches(sents, a.batch_tokens)
    R = a.restarts
    init = None
    if a.init_from:
        init = torch.load(a.init_from / "model.pt")["log_q"]
        if init.shape != (C, K):
            raise SystemExit(f"{a.init_from}/model.pt: table {tuple(init.shape)}, expected "
                             f"({C}, {K})")
        logq0 = init.unsqueeze(0).repeat(R, 1, 1)
        if R > 1:  # perturbed copies of the warm start
            logq0 = (logq0 + 0.1 * torch.randn_like(logq0)).log_softmax(-1)
    elif a.optimizer == "em":  # random distributions, as the cipher's own were drawn
        logq0 = torch.rand(R, C, K).log().log_softmax(-1)
    else:
        logq0 = torch.randn(R, C, K) * a.init_scale
    fb, _ = make_fb(a.backend, lm, phones, a.lm_scale, a.beam, init, a.preselect,
                    table_cache(a.lm))
    t0 = time.time()
    history = []
    if a.optimizer == "em":
        logq = logq0.log_softmax(-1)
        for ep in range(a.epochs):
            counts = torch.zeros(R, K, C, dtype=torch.float64)
            ll = run_epoch(fb, logq, data, counts=counts)
            q = counts.transpose(1, 2) + a.em_floor
            logq = (q / q.sum(-1, keepdim=True)).log().float()
            history.append((ll / n_tok).tolist())
            logging.info(f"epoch {ep + 1}/{a.epochs}: loglik/symbol "
                         f"{' '.join(f'{v:.4f}' for v in history[-1])} ({time.time() - t0:.0f} s)")
    else:
        theta = logq0.clone().requires_grad_()
        opt = torch.optim.Adam([theta], lr=a.lr)

        def step(em: Tensor, post: Tensor, ntok: int) -> None:
            opt.zero_grad()
            em.backward(-post / ntok)  # d(-loglik/token)/d(emissions) = -posteriors / ntok
            opt.step()

        for ep in range(a.epochs):
            order = torch.randperm(len(data)).tolist()
            ll = run_epoch(fb, lambda: theta.log_softmax(-1), [data[i] for i in order], step=step)
            history.append((ll / n_tok).tolist())
            logging.info(f"epoch {ep + 1}/{a.epochs}: loglik/symbol "
                         f"{' '.join(f'{v:.4f}' for v in history[-1])} ({time.time() - t0:.0f} s)")
        logq = theta.detach().log_softmax(-1)
    # final likelihood of every restart under its final table; pick the best (never the test)
    final_ll = run_epoch(fb, logq, data) / n_tok
    best = int(final_ll.argmax())
    seconds = time.time() - t0
    a.exp_dir.mkdir(parents=True, exist_ok=True)
    info = {"command": "uasr decipher " + " ".join(argv), "lm": str(a.lm),
            "lm_order": lm.order, "cipher": str(a.cipher),
            "symbols": n_tok, "optimizer": a.optimizer, "restarts": R, "epochs": a.epochs,
            "backend": a.backend, "beam": a.beam, "lm_scale": a.lm_scale,
            "init_from": str(a.init_from) if a.init_from else None,
            "final_loglik_per_symbol": final_ll.tolist(), "chosen_restart": best,
            "history": history, "seconds": round(seconds, 1)}
    (a.exp_dir / "train.json").write_text(json.dumps(info, indent=1))
    tmp = a.exp_dir / "model.pt.tmp"  # written last and atomically: it marks a finished run
    torch.save({"log_q": logq[best].clone(), "phones": phones}, tmp)
    tmp.replace(a.exp_dir / "model.pt")
    logging.info(f"{a.exp_dir}: restart {best} chosen (loglik/symbol "
                 f"{float(final_ll[best]):.4f}), {seconds:.0f} s")
    return 0


def one_dir_command(argv: list[str], exp_dir: Path) -> str:
    """The decode command line for one of several ``--exp-dir`` values (for results.json)."""
    out, skip = [], False
    for tok in argv:
        if skip and not tok.startswith("--"):
            continue
        skip = tok == "--exp-dir"
        out.append(tok)
        if skip:
            out.append(str(exp_dir))
    return "uasr decipher " + " ".join(out)


def decode(a: argparse.Namespace, argv: list[str]) -> int:
    """Decode the test text with every model in ``--exp-dir`` (one process: one LM load)."""
    lm = read_arpa(a.lm)
    sents = read_cipher(a.cipher)
    if not a.phones.is_file():
        raise SystemExit(f"{a.phones}: no reference phone file")
    refs = [line.split() for line in open(a.phones, encoding="utf-8") if line.strip()]
    if len(refs) != len(sents) or any(len(r) != len(s) for r, s in zip(refs, sents)):
        raise SystemExit(f"{a.phones} and {a.cipher} disagree in lines or lengths")
    data = batches(sents, a.batch_tokens)
    # batches() sorts by length (stable): row order is this order of sentence indices
    idx = sorted(range(len(sents)), key=lambda i: len(sents[i]))
    for exp_dir in a.exp_dir:
        ckpt = exp_dir / "model.pt"
        if not ckpt.is_file():
            raise SystemExit(f"{ckpt}: no trained model; run 'uasr decipher train' first")
        model = torch.load(ckpt)
        phones, logq = model["phones"], model["log_q"]
        _, vit = make_fb(a.backend, lm, phones, a.lm_scale, a.beam, logq, a.preselect,
                         table_cache(a.lm))
        t0 = time.time()
        hyp_all: dict[int, list[int]] = {}
        pos = 0
        with torch.no_grad():
            for x, lengths in data:
                for h in vit(logq.t()[x], lengths, x):
                    hyp_all[idx[pos]] = h
                    pos += 1
        errors = sum(r != phones[h] for i, ref in enumerate(refs)
                     for r, h in zip(ref, hyp_all[i]))
        total = sum(map(len, refs))
        # each symbol mapped to its most likely phone, no LM: is the table itself right?
        sym_map = logq.argmax(0)
        map_err = sum(phones[int(sym_map[s])] != r for sent, ref in zip(sents, refs)
                      for s, r in zip(sent, ref))
        res = {"command": one_dir_command(argv, exp_dir), "ser": errors / total,
               "map_ser": map_err / total, "test_symbols": total,
               "decode_seconds": round(time.time() - t0, 1)}
        (exp_dir / "decode.json").write_text(json.dumps(res, indent=1))
        print(f"{exp_dir}: SER {100 * res['ser']:.2f}% ({errors}/{total}), "
              f"symbol-map SER {100 * res['map_ser']:.2f}%", flush=True)
    return 0


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"uasr {COMMAND}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "decode"):
        s = sub.add_parser(name)
        s.add_argument("--lm", type=Path, required=True, help="phone LM (ARPA)")
        s.add_argument("--cipher", type=Path, required=True, help="symbol ids, a sentence a line")
        s.add_argument("--exp-dir", type=Path, required=True, nargs="+" if name == "decode"
                       else None, help="decode: one or more trained models")
        s.add_argument("--backend", choices=("dense", "graph", "preselect"), default="dense")
        s.add_argument("--preselect", type=int, default=4, help="preselect: phones per symbol")
        s.add_argument("--beam", type=int, default=None, help="graph backend: pruned forward")
        s.add_argument("--lm-scale", type=float, default=1.0)
        s.add_argument("--batch-tokens", type=int, default=20000,
                       help="padded symbols per batch (per restart)")
        s.add_argument("--threads", type=int, default=1)
    t = sub.choices["train"]
    t.add_argument("--num-symbols", type=int, default=0, help="train on this many (0: all)")
    t.add_argument("--vocab-size", type=int, default=0, help="number of cipher symbols")
    t.add_argument("--optimizer", choices=("em", "adam"), default="em")
    t.add_argument("--restarts", type=int, default=4)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--lr", type=float, default=0.1, help="adam")
    t.add_argument("--init-scale", type=float, default=1.0, help="adam: logits ~ N(0, s^2)")
    t.add_argument("--em-floor", type=float, default=1e-6, help="em: count floor")
    t.add_argument("--init-from", type=Path, help="exp dir whose model.pt starts training")
    t.add_argument("--seed", type=int, default=1)
    sub.choices["decode"].add_argument("--phones", type=Path, required=True,
                                       help="reference phones aligned with --cipher")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # tiny probabilities as denormals slow CPUs ~10x
    return train(a, argv) if a.cmd == "train" else decode(a, argv)


if __name__ == "__main__":
    sys.exit(main())
