"""P_C: the forward-backward recursion equals enumeration; norms, ranks, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from uasr.lm.arpa import NgramLM
from uasr.theory.pc import (chain_from_bigram, chain_from_lm, chain_from_table, chain_from_trigram,
                            column_rank, full_column_rank, pc_from_chain, pc_from_lm,
                            pc_from_prior, pinv_norms, sequence_index, sigma_min)


def _enumerate_pc(C: int, N: int, weight) -> np.ndarray:
    """P_C by brute force: weight(seq) is the unnormalised probability of a sequence."""
    P = np.zeros((N, C))
    for seq in itertools.product(range(C), repeat=N):
        w = weight(seq)
        for n, c in enumerate(seq):
            P[n, c] += w
    return P / P.sum(1, keepdims=True)


def _random_table(rng, C: int, order: int, eos: bool) -> np.ndarray:
    t = rng.dirichlet(np.ones(C + 1), size=(C + 1,) * (order - 1))
    if not eos:
        t[..., C] = 0.0
        t /= t.sum(-1, keepdims=True)
    return t


def _table_weight(table: np.ndarray, C: int, eos: str):
    order = table.ndim

    def weight(seq):
        h = (C,) * (order - 1)
        w = 1.0
        for c in seq:
            p = table[h][c]
            w *= p / (1 - table[h][C]) if eos == "renorm" else p
            h = (h + (c,))[1:] if order > 1 else ()
        return w * (table[h][C] if eos == "exactly" else 1.0)
    return weight


def test_sequence_index_is_row_major():
    idx = sequence_index(3, 2)
    assert idx.tolist()[:4] == [[0, 0], [0, 1], [0, 2], [1, 0]]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("eos", ["at_least", "exactly", "renorm"])
@pytest.mark.parametrize("N", [1, 3, 5])
def test_table_recursion_equals_enumeration(order, eos, N):
    rng = np.random.default_rng(order * 100 + N)
    C = 3
    table = _random_table(rng, C, order, eos=True)
    P = pc_from_chain(chain_from_table(table), N, eos)
    np.testing.assert_allclose(P, _enumerate_pc(C, N, _table_weight(table, C, eos)), atol=1e-12)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-12)


def test_bigram_and_trigram_builders_equal_enumeration():
    rng = np.random.default_rng(0)
    C, N = 3, 4
    start, trans = rng.dirichlet(np.ones(C)), rng.dirichlet(np.ones(C), size=C)
    prior = np.array([start[s[0]] * np.prod([trans[a, b] for a, b in zip(s, s[1:])])
                      for s in itertools.product(range(C), repeat=N)])
    np.testing.assert_allclose(pc_from_chain(chain_from_bigram(trans, start), N),
                               pc_from_prior(prior, C, N), atol=1e-12)
    second, tri = rng.dirichlet(np.ones(C), size=C), rng.dirichlet(np.ones(C), size=(C, C))

    def w(s):
        p = start[s[0]] * second[s[0], s[1]]
        return p * np.prod([tri[s[i - 2], s[i - 1], s[i]] for i in range(2, len(s))])
    np.testing.assert_allclose(pc_from_chain(chain_from_trigram(tri, second, start), N),
                               _enumerate_pc(C, N, w), atol=1e-12)


def test_prior_accepts_flat_and_tensor_shapes():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(8))
    np.testing.assert_allclose(pc_from_prior(p, 2, 3), pc_from_prior(p.reshape(2, 2, 2), 2, 3))
    batch = rng.dirichlet(np.ones(8), size=5)
    assert pc_from_prior(batch, 2, 3).shape == (5, 3, 2)
    with pytest.raises(ValueError, match="C\\^N = 8"):
        pc_from_prior(np.ones(7) / 7, 2, 3)


def _toy_lm() -> NgramLM:
    """A back-off trigram over {a, b, c} (log10 probs; some trigrams back off)."""
    lm = NgramLM(order=3)
    uni = {"<s>": -99.0, "</s>": math.log10(0.2), "a": math.log10(0.3), "b": math.log10(0.3),
           "c": math.log10(0.2)}
    lm.probs[1] = {(k,): v for k, v in uni.items()}
    lm.backoffs[1] = {("<s>",): 0.0, ("a",): math.log10(0.5), ("b",): 0.0, ("c",): 0.0}
    lm.probs[2] = {("<s>", "a"): math.log10(0.6), ("<s>", "b"): math.log10(0.4),
                   ("a", "b"): math.log10(0.5)}
    lm.backoffs[2] = {("<s>", "a"): math.log10(0.4)}
    lm.probs[3] = {("<s>", "a", "c"): math.log10(0.6)}
    return lm


@pytest.mark.parametrize("eos", ["at_least", "exactly", "renorm"])
def test_ngram_lm_recursion_equals_enumeration(eos):
    lm = _toy_lm()
    toks = ["a", "b", "c"]

    def weight(seq):
        h, w = ["<s>"], 1.0
        for c in seq:
            p = math.exp(lm.logprob(toks[c], h))
            z = sum(math.exp(lm.logprob(t, h)) for t in toks)  # the toy LM is not normalised
            w *= p / z if eos == "renorm" else p
            h.append(toks[c])
        return w * (math.exp(lm.logprob("</s>", h)) if eos == "exactly" else 1.0)
    for N in (1, 2, 4):
        np.testing.assert_allclose(pc_from_lm(lm, N, toks, eos), _enumerate_pc(3, N, weight),
                                   atol=1e-12)


def test_lm_symbols_must_cover_tokens():
    with pytest.raises(ValueError, match="without a label id"):
        chain_from_lm(_toy_lm(), ["a", "b"])


def test_long_n_does_not_underflow():
    rng = np.random.default_rng(2)
    table = _random_table(rng, 4, 2, eos=True)
    P = pc_from_chain(chain_from_table(table), 2000, "exactly")
    assert np.isfinite(P).all() and np.allclose(P.sum(1), 1.0)


def test_errors_name_the_problem():
    chain = chain_from_table(_random_table(np.random.default_rng(3), 2, 2, eos=False))
    with pytest.raises(ValueError, match="eos must be one of"):
        pc_from_chain(chain, 3, "sometimes")
    with pytest.raises(ValueError, match="N must be >= 1"):
        pc_from_chain(chain, 0)
    with pytest.raises(ValueError, match="eos='at_least'"):
        pc_from_chain(chain, 3, "exactly")


def test_norms_and_rank_on_hand_example():
    P = np.array([[0.5, 0.5], [0.6, 0.4]])  # P^-1 = [[-4, 5], [6, -5]]
    n = pinv_norms(P)
    assert n["induced"] == pytest.approx(10.0) and n["entrywise"] == pytest.approx(20.0)
    assert sigma_min(P) == pytest.approx(np.linalg.svd(P)[1][-1])
    assert full_column_rank(P) and column_rank(P) == 2


def test_rank_deficient_and_short_matrices():
    iid = np.tile([0.2, 0.3, 0.5], (4, 1))
    assert column_rank(iid) == 1 and not full_column_rank(iid)
    assert sigma_min(iid) < 1e-15
    short = np.array([[0.2, 0.3, 0.5], [0.5, 0.3, 0.2]])  # N < |C|: never full column rank
    assert sigma_min(short) == 0.0 and not full_column_rank(short)
    near = np.array([[0.5, 0.5], [0.5 + 1e-9, 0.5 - 1e-9]])
    assert full_column_rank(near) and not full_column_rank(near, tol=1e-6)
