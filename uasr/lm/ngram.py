"""n-gram estimation on token sequences (phones or words) and perplexity.

``train_ngram(sentences, order)`` returns an interpolated **modified Kneser-Ney** LM (Chen &
Goodman 1998: three discounts per order from counts-of-counts, continuation counts for lower
orders) or, with ``smoothing="witten_bell"``, an interpolated Witten-Bell LM. The result is an
:class:`~uasr.lm.arpa.NgramLM` in back-off form: each seen n-gram stores its *interpolated*
probability and each context the weight of its lower-order distribution, which represents the
interpolated model exactly (as SRILM ``-interpolate`` and KenLM do), so it can be written as ARPA.

Sentences get ``<s>``/``</s>``; ``<s>`` is a context only (log10 prob -99). The unigram
distribution is interpolated with a uniform one over the vocabulary, so every vocabulary token
(also one given in ``vocab`` but unseen) has a non-zero probability in every context.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from uasr.lm.arpa import NEG_INF_LOG10, NgramLM

BOS, EOS = "<s>", "</s>"
SMOOTHING = ("kneser_ney", "witten_bell")
Ngram = tuple[str, ...]


def _tokens(sentence: Sequence[str] | str) -> list[str]:
    toks = sentence.split() if isinstance(sentence, str) else list(sentence)
    bad = [t for t in toks if t in (BOS, EOS)]
    if bad:
        raise ValueError(f"sentence contains reserved token {bad[0]!r}: {' '.join(toks)[:80]}")
    return toks


def count_ngrams(sentences: Iterable[Sequence[str] | str], order: int) -> list[Counter]:
    """Raw counts: ``counts[k][g]`` for the order-``k`` n-grams that end each position with
    the longest available history (full ``order``-grams, plus shorter ones only at sentence
    starts, which begin with ``<s>``)."""
    counts = [Counter() for _ in range(order + 1)]
    for sent in sentences:
        toks = [BOS] + _tokens(sent) + [EOS]
        for i in range(1, len(toks)):
            g = tuple(toks[max(0, i - order + 1):i + 1])
            counts[len(g)][g] += 1
    return counts


def _kn_adjust(raw: list[Counter], order: int) -> list[Counter]:
    """Kneser-Ney adjusted counts: below the top order, an n-gram's count is the number of
    distinct tokens seen before it (its continuation count), except for n-grams starting with
    ``<s>``, which nothing can precede and which keep their raw counts."""
    adj = [Counter() for _ in range(order + 1)]
    adj[order] = Counter(raw[order])
    for k in range(order - 1, 0, -1):
        cur = Counter({g: c for g, c in raw[k].items() if g[0] == BOS})
        for g in adj[k + 1]:
            if g[1] != BOS:
                cur[g[1:]] += 1
        adj[k] = cur
    return adj


def kn_discounts(counts: Counter) -> tuple[float, float, float]:
    """Modified KN discounts (D1, D2, D3+) from the counts-of-counts n1..n4 of one order.

    Falls back to the single absolute discount ``Y = n1 / (n1 + 2 n2)`` (or 0.5) when the
    counts-of-counts are too sparse to give discounts in the valid ranges ``0 < D_i < i``.
    """
    n = Counter(min(c, 5) for c in counts.values())
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    if n1 and n2:
        y = n1 / (n1 + 2 * n2)
        if n3 and n4:
            d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            if all(0 < di < i for i, di in enumerate(d, 1)):
                return d
        if 0 < y < 1:
            return (y, y, y)
    return (0.5, 0.5, 0.5)


def train_ngram(
    sentences: Iterable[Sequence[str] | str],
    order: int,
    *,
    smoothing: str = "kneser_ney",
    vocab: Iterable[str] | None = None,
) -> NgramLM:
    """Estimate an n-gram LM.

    Args:
        sentences: token sequences (lists, or strings split on whitespace), one per sentence.
        order: n (1 = unigram).
        smoothing: ``"kneser_ney"`` (interpolated modified KN) or ``"witten_bell"``.
        vocab: extra tokens the LM must cover even if unseen (e.g. the full phone set).
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
    raw = count_ngrams(sentences, order)
    if not raw[order] and not any(raw):
        raise ValueError("train_ngram: no sentences")
    counts = _kn_adjust(raw, order) if smoothing == "kneser_ney" else _suffix_counts(raw, order)
    if not counts[1]:
        raise ValueError("train_ngram: the text is empty (no tokens)")

    words = {g[0] for g in counts[1]} | {EOS} | set(vocab or ())
    words.discard(BOS)
    words = sorted(words)
    lm = NgramLM(order=order)
    prob: list[dict[Ngram, float]] = [{} for _ in range(order + 1)]  # linear probabilities
    uniform = 1.0 / len(words)

    for k in range(1, order + 1):
        by_ctx: dict[Ngram, list[tuple[str, int]]] = defaultdict(list)
        for g, c in counts[k].items():
            by_ctx[g[:-1]].append((g[-1], c))
        disc = kn_discounts(counts[k]) if smoothing == "kneser_ney" else None
        for h, conts in by_ctx.items():
            total = sum(c for _, c in conts)
            if disc is not None:
                d = [disc[min(c, 3) - 1] for _, c in conts]
                gamma = sum(d) / total
                scaled = [(w, (c - di) / total) for (w, c), di in zip(conts, d)]
            else:
                types = len(conts)
                gamma = types / (total + types)
                scaled = [(w, c / (total + types)) for w, c in conts]
            for w, p in scaled:
                lower = uniform if k == 1 else prob[k - 1][h[1:] + (w,)]
                prob[k][h + (w,)] = p + gamma * lower
            if k > 1:
                lm.backoffs[k - 1][h] = math.log10(gamma) if gamma > 0 else NEG_INF_LOG10
            elif gamma > 0:
                # unigram: the uniform share of unseen vocabulary words
                for w in words:
                    if (w,) not in prob[1]:
                        prob[1][(w,)] = gamma * uniform
    # ARPA convention: <s> is a unigram with probability 0 (it is never predicted)
    lm.probs[1][(BOS,)] = NEG_INF_LOG10
    for k in range(1, order + 1):
        for g in sorted(prob[k]):
            lm.probs[k][g] = math.log10(prob[k][g])
    if order > 1 and (BOS,) not in lm.backoffs[1]:
        lm.backoffs[1][(BOS,)] = 0.0
    lm.probs[1] = dict(sorted(lm.probs[1].items()))
    return lm


def _suffix_counts(raw: list[Counter], order: int) -> list[Counter]:
    """Raw counts at every order (Witten-Bell): an n-gram's count is how often it occurs with
    its longest available history, summed over the higher-order n-grams it is a suffix of."""
    out = [Counter() for _ in range(order + 1)]
    out[order] = Counter(raw[order])
    for k in range(order - 1, 0, -1):
        cur = Counter(raw[k])
        for g, c in out[k + 1].items():
            cur[g[1:]] += c
        out[k] = cur
    return out


def sentence_logprob(lm: NgramLM, sentence: Sequence[str] | str) -> tuple[float, int, list[str]]:
    """Natural-log probability of ``sentence`` + ``</s>``; also the number of scored tokens and
    the tokens the LM gives zero probability (OOVs, skipped)."""
    toks = _tokens(sentence) + [EOS]
    hist: list[str] = [BOS]
    total, n, oov = 0.0, 0, []
    for t in toks:
        lp = lm.logprob(t, hist)
        if lp == -math.inf:
            oov.append(t)
        else:
            total += lp
            n += 1
        hist.append(t)
    return total, n, oov


def perplexity(lm: NgramLM, sentences: Iterable[Sequence[str] | str], *,
               skip_oov: bool = False) -> float:
    """Per-token perplexity (``</s>`` counted, as SRILM's ``ppl``).

    Tokens with zero probability raise ValueError unless ``skip_oov`` (then they are left out).
    """
    total, n, oovs = 0.0, 0, Counter()
    for s in sentences:
        lp, k, oov = sentence_logprob(lm, s)
        total, n = total + lp, n + k
        oovs.update(oov)
    if oovs and not skip_oov:
        raise ValueError(f"{sum(oovs.values())} token(s) have zero LM probability (OOV): "
                         f"{' '.join(list(oovs)[:10])}; pass skip_oov=True or add them to vocab")
    if n == 0:
        raise ValueError("perplexity: no tokens to score")
    return math.exp(-total / n)
