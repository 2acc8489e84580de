"""expand="backoff" n-gram graphs: exactly the full expansion's totals and gradients, sparse."""

import itertools
import math
import random

import pytest
import torch

from uasr.graph import NoPathError, ctc, loop, ngram_graph, one_to_one, total_score, viterbi
from uasr.graph.backoff import BackoffGraph
from uasr.lm.arpa import read_arpa
from uasr.lm.ngram import train_ngram

from .test_ngram_graph import ARPA

TOKENS = list("abcde")
SYMBOLS = {t: i + 1 for i, t in enumerate(TOKENS)}  # label 0 is free for silence
TOPOLOGIES = {"one_to_one": one_to_one(), "loop": loop(0.4),
              "loop_sil": loop(0.4, silence=0, silence_prob=0.2)}


def random_lm(order: int, seed: int, smoothing: str = "kneser_ney", tokens=TOKENS,
              sentences: int = 15, max_len: int = 6):
    """A small LM from random text; some tokens rarer, so many n-grams are not stored."""
    rng = random.Random(seed)
    text = [" ".join(rng.choice(tokens[: len(tokens) - 1] if i % 3 else tokens)
                     for _ in range(rng.randint(1, max_len))) for i in range(sentences)]
    return train_ngram(text, order, smoothing=smoothing, vocab=tokens)


def inputs(B: int, T: int, V: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(B, T, V, generator=g, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([T] + [max(1, T - 2 * b - 1) for b in range(1, B)])
    return em, lengths


def sentence_logprob(lm, seq) -> float:
    h, total = ["<s>"], 0.0
    for w in list(seq) + ["</s>"]:
        total += lm.logprob(w, h)
        h.append(w)
    return total


@pytest.fixture
def arpa_lm(tmp_path):
    p = tmp_path / "lm.arpa"
    p.write_text(ARPA)
    return read_arpa(p)


@pytest.mark.parametrize("order,smoothing", [(2, "kneser_ney"), (3, "kneser_ney"),
                                             (4, "kneser_ney"), (3, "witten_bell")])
@pytest.mark.parametrize("topo", list(TOPOLOGIES))
def test_totals_and_gradients_equal_full_expansion(order, smoothing, topo):
    lm = random_lm(order, seed=order, smoothing=smoothing)
    full = ngram_graph(lm, SYMBOLS, TOPOLOGIES[topo], expand="full")
    back = ngram_graph(lm, SYMBOLS, TOPOLOGIES[topo], expand="backoff")
    assert isinstance(back, BackoffGraph)
    em, lengths = inputs(4, 9, 6, seed=order)
    padded = em.clone()
    for b, n in enumerate(lengths.tolist()):
        padded[b, n:] = float("nan")  # padding must not leak
    x = padded.clone().requires_grad_(True)
    ref = total_score(x, lengths, full)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    for backend in ("auto", "sparse"):  # probability space; log space
        x = padded.clone().requires_grad_(True)
        got = total_score(x, lengths, back, backend=backend)
        (g_got,) = torch.autograd.grad(got.sum(), x)
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=0)
        torch.testing.assert_close(g_got, g_ref, rtol=1e-9, atol=1e-12)


def test_corrections_are_needed():
    """Without the correction arcs (the textbook backoff WFST) the totals are wrong."""
    import dataclasses
    lm = random_lm(3, seed=3)
    back = ngram_graph(lm, SYMBOLS, one_to_one(), expand="backoff")
    assert back.corr_node.numel() > 0
    naive = dataclasses.replace(back, corr_logw=torch.full_like(back.corr_logw, -math.inf), _cache={})
    em, lengths = inputs(2, 6, 6, seed=0)
    ref = total_score(em, lengths, ngram_graph(lm, SYMBOLS, one_to_one(), expand="full"))
    assert torch.allclose(total_score(em, lengths, back), ref, rtol=1e-9)
    assert not torch.allclose(total_score(em, lengths, naive), ref, rtol=1e-3)


@pytest.mark.parametrize("topo", list(TOPOLOGIES))
def test_hand_written_arpa(arpa_lm, topo):
    symbols = {"a": 1, "b": 2}
    full = ngram_graph(arpa_lm, symbols, TOPOLOGIES[topo], expand="full")
    back = ngram_graph(arpa_lm, symbols, TOPOLOGIES[topo], expand="backoff")
    assert back.clamped == 0
    em, lengths = inputs(3, 7, 3, seed=1)
    torch.testing.assert_close(total_score(em, lengths, back), total_score(em, lengths, full),
                               rtol=1e-9, atol=0)


def test_brute_force_label_sequences():
    """one_to_one: total = log sum over label sequences of p_LM(seq </s>) * emissions."""
    lm = random_lm(3, seed=5, tokens=list("abc"))
    symbols = {t: i for i, t in enumerate("abc")}
    graph = ngram_graph(lm, symbols, one_to_one(), expand="backoff")
    em = torch.randn(1, 4, 3, dtype=torch.float64)
    for T in (1, 2, 3, 4):
        want = torch.logsumexp(torch.tensor(
            [sentence_logprob(lm, seq) + sum(float(em[0, t, symbols[c]]) for t, c in enumerate(seq))
             for seq in itertools.product("abc", repeat=T)], dtype=torch.float64), 0)
        got = total_score(em[:, :T], torch.tensor([T]), graph)[0]
        assert math.isclose(float(got), float(want), rel_tol=1e-9)


def test_gradcheck():
    lm = random_lm(3, seed=7, tokens=list("abc"))
    graph = ngram_graph(lm, {"a": 1, "b": 2, "c": 3}, loop(0.3, silence=0), expand="backoff")
    em = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 3])
    assert torch.autograd.gradcheck(lambda e: total_score(e, lengths, graph), (em,))
    assert torch.autograd.gradcheck(lambda e: total_score(e, lengths, graph, backend="sparse"), (em,))


def _zero_unigram_arpa(tmp_path):
    """An interpolated bigram LM in which c has unigram probability 0: only "b c" allows it."""
    p = tmp_path / "zero.arpa"
    p.write_text("\\data\\\nngram 1=5\nngram 2=4\n\n\\1-grams:\n-0.6\t</s>\n-99\t<s>\t-0.2\n"
                 "-0.2\ta\t-0.1\n-0.9\tb\t-0.1\n-99\tc\n\n\\2-grams:\n-0.3\t<s> a\n-0.4\t<s> b\n"
                 "-0.5\ta b\n-0.3\tb c\n\n\\end\\\n")
    return read_arpa(p)


def test_underflow_rows_fall_back_to_log_space(tmp_path):
    """Row 0's only path has an emission 800 nats below the frame's best label: probability
    space loses it (exp underflows in float64), the log-space fallback keeps it exactly."""
    lm = _zero_unigram_arpa(tmp_path)
    symbols = {"a": 0, "b": 1, "c": 2}
    full = ngram_graph(lm, symbols, one_to_one(), expand="full")
    back = ngram_graph(lm, symbols, one_to_one(), expand="backoff")
    em = torch.zeros(2, 3, 3, dtype=torch.float64)
    em[0, :, 2] = -math.inf
    em[0, 1, 1] = -800.0  # b at frame 1 ...
    em[0, 2, :2] = -math.inf  # ... is the only way to c at frame 2
    em[0, 2, 2] = 0.0
    em[1] = torch.randn(3, 3, dtype=torch.float64)
    x = em.clone().requires_grad_(True)
    got = total_score(x, torch.tensor([3, 3]), back)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    assert -810 < float(got[0].detach()) < -800
    y = em.clone().requires_grad_(True)
    ref = total_score(y, torch.tensor([3, 3]), full)
    (g_ref,) = torch.autograd.grad(ref.sum(), y)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=0)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-9, atol=1e-12)


def test_no_path(tmp_path):
    lm = _zero_unigram_arpa(tmp_path)
    back = ngram_graph(lm, {"a": 0, "b": 1, "c": 2}, one_to_one(), expand="backoff")
    em = torch.zeros(2, 2, 3, dtype=torch.float64)
    em[1, 0, :] = -math.inf
    em[1, 0, 2] = 0.0  # c cannot start a sentence
    with pytest.raises(NoPathError, match="utterance 1"):
        total_score(em, torch.tensor([2, 2]), back)
    x = em.clone().requires_grad_(True)
    tot = total_score(x, torch.tensor([2, 2]), back, no_path="zero")
    (grad,) = torch.autograd.grad(tot.sum(), x)
    assert tot[1].item() == 0.0 and math.isfinite(tot[0].item())
    assert bool((grad[1] == 0).all()) and not torch.isnan(grad).any()


def test_katz_lm_raises(tmp_path):
    """A back-off LM whose p(b | a) < bow(a) p(b) has no non-negative d(b | a)."""
    p = tmp_path / "katz.arpa"
    p.write_text("\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-0.6\t</s>\n-99\t<s>\t0\n"
                 "-0.4\ta\t-0.05\n-0.5\tb\n\n\\2-grams:\n-0.2\t<s> a\n-1.3\ta b\n\n\\end\\\n")
    lm = read_arpa(p)
    with pytest.raises(ValueError, match=r"n-gram 'a b' .*use expand='minimal'"):
        ngram_graph(lm, {"a": 0, "b": 1}, one_to_one(), expand="backoff")
    ngram_graph(lm, {"a": 0, "b": 1}, one_to_one(), expand="minimal")  # fine there


def test_rounding_negative_d_is_clamped_and_counted(tmp_path):
    """p(b | a) a hair below bow(a) p(b) (ARPA rounding): d is clamped to 0 and counted."""
    bow, pb = -0.05, -0.5
    p = tmp_path / "round.arpa"
    p.write_text("\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-0.6\t</s>\n-99\t<s>\t0\n"
                 f"-0.4\ta\t{bow}\n{pb}\tb\n\n\\2-grams:\n-0.2\t<s> a\n"
                 f"{bow + pb - 1e-7:.9f}\ta b\n\n\\end\\\n")
    lm = read_arpa(p)
    back = ngram_graph(lm, {"a": 0, "b": 1}, one_to_one(), expand="backoff")
    assert back.clamped == 1
    full = ngram_graph(lm, {"a": 0, "b": 1}, one_to_one(), expand="full")
    em, lengths = inputs(2, 5, 2, seed=3)
    torch.testing.assert_close(total_score(em, lengths, back), total_score(em, lengths, full),
                               rtol=1e-6, atol=0)


def test_arc_count_far_below_full_expansion():
    """A 4-gram over 40 labels: arcs only for stored n-grams; still exact (vs minimal)."""
    phones = [f"p{i}" for i in range(40)]
    lm = random_lm(4, seed=11, tokens=phones, sentences=100, max_len=20)
    symbols = {t: i + 1 for i, t in enumerate(phones)}
    back = ngram_graph(lm, symbols, loop(0.5), expand="backoff")
    C = len(phones)
    full_arcs = (1 + C + C ** 2 + C ** 3) * C  # LM arcs of the full acceptor alone
    minimal = ngram_graph(lm, symbols, loop(0.5), expand="minimal")
    print(f"arcs: backoff {back.num_arcs}, minimal {minimal.num_arcs}, full > {full_arcs}")
    assert back.num_arcs * 100 < full_arcs
    assert back.num_arcs * 5 < minimal.num_arcs
    em, lengths = inputs(2, 12, C + 1, seed=4)
    torch.testing.assert_close(total_score(em, lengths, back), total_score(em, lengths, minimal),
                               rtol=1e-9, atol=0)


def test_float32_close_to_float64():
    lm = random_lm(4, seed=4)
    back = ngram_graph(lm, SYMBOLS, TOPOLOGIES["loop_sil"], expand="backoff")
    em, lengths = inputs(3, 60, 6, seed=6)
    a = total_score(em.float(), lengths, back)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a.double(), total_score(em, lengths, back), rtol=1e-5, atol=0)


def test_viterbi_exact_for_bigram():
    lm = random_lm(2, seed=2)
    for topo in TOPOLOGIES.values():
        full = ngram_graph(lm, SYMBOLS, topo, expand="full")
        back = ngram_graph(lm, SYMBOLS, topo, expand="backoff")
        em, lengths = inputs(3, 8, 6, seed=8)
        a, b = viterbi(em, lengths, full), viterbi(em, lengths, back)
        torch.testing.assert_close(b.scores, a.scores, rtol=1e-9, atol=0)
        assert b.labels == a.labels
        assert [x.tolist() for x in b.alignments] == [x.tolist() for x in a.alignments]


@pytest.mark.parametrize("order", [3, 4])
def test_viterbi_wfst_approximation(order):
    """Higher orders: every exact path is in the graph (score >= exact best); emissions that
    pin a label sequence give the same sequence as the full expansion."""
    lm = random_lm(order, seed=order + 20)
    for topo in TOPOLOGIES.values():
        full = ngram_graph(lm, SYMBOLS, topo, expand="full")
        back = ngram_graph(lm, SYMBOLS, topo, expand="backoff")
        em, lengths = inputs(3, 8, 6, seed=9)
        assert bool((viterbi(em, lengths, back).scores >= viterbi(em, lengths, full).scores - 1e-9).all())
        g = torch.Generator().manual_seed(order)
        seq = torch.randint(1, 6, (2, 8), generator=g)
        pinned = torch.full((2, 8, 6), -8.0, dtype=torch.float64).scatter_(2, seq.unsqueeze(2), 0.0)
        n = torch.tensor([8, 5])
        assert viterbi(pinned, n, back).labels == viterbi(pinned, n, full).labels


def test_unsupported_uses_raise(arpa_lm):
    symbols = {"a": 1, "b": 2}
    back = ngram_graph(arpa_lm, symbols, loop(0.5), expand="backoff")
    em, lengths = inputs(1, 4, 3, seed=0)
    with pytest.raises(ValueError, match="beam= is not supported"):
        total_score(em, lengths, back, beam=4)
    with pytest.raises(ValueError, match="not supported"):
        viterbi(em, lengths, back, beam=4)
    with pytest.raises(ValueError, match="backend 'dense' is not available"):
        total_score(em, lengths, back, backend="dense")
    with pytest.raises(ValueError, match="forbid_repeat"):
        ngram_graph(arpa_lm, symbols, loop(0.5, forbid_repeat=True), expand="backoff")
    with pytest.raises(ValueError, match="expand='minimal'"):
        ngram_graph(arpa_lm, symbols, ctc(blank=0), expand="backoff")
    back.emit.requires_grad_()
    with pytest.raises(ValueError, match="graph weights are not supported"):
        total_score(em, lengths, back)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    lm = random_lm(4, seed=4)
    back = ngram_graph(lm, SYMBOLS, TOPOLOGIES["loop_sil"], expand="backoff")
    em, lengths = inputs(3, 20, 6, seed=6)
    x = em.clone().requires_grad_(True)
    ref = total_score(x, lengths, back)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    for dtype, rtol in ((torch.float64, 1e-9), (torch.float32, 1e-5)):
        y = em.cuda().to(dtype).requires_grad_(True)
        got = total_score(y, lengths.cuda(), back.to("cuda"))
        (g_got,) = torch.autograd.grad(got.sum(), y)
        torch.testing.assert_close(got.cpu().double(), ref, rtol=rtol, atol=0)
        torch.testing.assert_close(g_got.cpu().double(), g_ref, rtol=rtol, atol=rtol)
    assert viterbi(em.cuda(), lengths.cuda(), back.to("cuda")).labels == viterbi(em, lengths, back).labels
