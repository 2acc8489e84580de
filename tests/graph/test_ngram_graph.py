"""n-gram LM graphs: ARPA I/O (incl. kaldilm), exact LM probabilities, full vs minimal."""

import itertools
import math
import subprocess
import sys

import pytest
import torch

from uasr.graph import ngram_graph, one_to_one, loop, total_score, viterbi
from uasr.lm.arpa import NgramLM, read_arpa, write_arpa

# A hand-written back-off trigram over {a, b} (log10 values, as any ARPA writer produces).
ARPA = """\\data\\
ngram 1=4
ngram 2=5
ngram 3=2

\\1-grams:
-0.6\t</s>
-99\t<s>\t-0.3
-0.4\ta\t-0.2
-0.5\tb\t-0.25

\\2-grams:
-0.2\t<s> a\t-0.1
-0.5\t<s> b
-0.3\ta b\t-0.15
-0.4\tb a
-0.35\tb </s>

\\3-grams:
-0.1\t<s> a b
-0.2\ta b </s>

\\end\\
"""


@pytest.fixture
def arpa_file(tmp_path):
    p = tmp_path / "lm.arpa"
    p.write_text(ARPA)
    return p


def test_backoff_logprob(arpa_file):
    lm = read_arpa(arpa_file)
    ln = math.log(10)
    assert math.isclose(lm.logprob("b", ["<s>", "a"]), -0.1 * ln)
    # "a b a": trigram missing -> bow(a b) + p(a | b)
    assert math.isclose(lm.logprob("a", ["a", "b"]), (-0.15 - 0.4) * ln)
    # "b a a": bow(b a)=0 (absent), bigram "a a" missing -> bow(a) + p(a)
    assert math.isclose(lm.logprob("a", ["b", "a"]), (-0.2 - 0.4) * ln)
    assert lm.logprob("zzz", ["a"]) == -math.inf


def test_arpa_round_trip(arpa_file, tmp_path):
    lm = read_arpa(arpa_file)
    out = tmp_path / "again.arpa.gz"
    write_arpa(lm, out)
    lm2 = read_arpa(out)
    assert lm2.probs == lm.probs and lm2.backoffs == lm.backoffs and lm2.order == 3


def test_our_arpa_loads_in_kaldilm(arpa_file, tmp_path):
    """icefall reads ARPA through kaldilm (Kaldi's arpa2fst); ours must pass it cleanly."""
    kaldilm = pytest.importorskip("kaldilm")  # a dev dependency; absent on bare GPU images
    out = tmp_path / "ours.arpa"
    write_arpa(read_arpa(arpa_file), out)
    res = subprocess.run([sys.executable, "-m", "kaldilm", "--disambig-symbol=#0",
                          "--max-order=3", str(out), str(tmp_path / "G.fst")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "G.fst").stat().st_size > 0
    assert "WARNING" not in res.stderr, res.stderr
    # the text form: every n-gram of ours became an arc (plus back-off arcs)
    arcs = [line for line in kaldilm.arpa2fst(str(out), disambig_symbol="#0").splitlines()
            if len(line.split()) >= 4]
    assert len(arcs) >= 11 - 2  # n-grams, minus <s>/</s> unigrams that are not arcs


@pytest.mark.parametrize("bad,msg", [("\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n", "announces 2"),
                                      ("\\data\\\nngram 1=1\n\n\\1-grams:\nx a\n\\end\\\n", ":5: non-numeric"),
                                      ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1 a\n", "truncated")])
def test_arpa_errors_name_file_and_line(bad, msg, tmp_path):
    p = tmp_path / "bad.arpa"
    p.write_text(bad)
    with pytest.raises(ValueError, match=msg):
        read_arpa(p)
    with pytest.raises(FileNotFoundError, match="no such ARPA file"):
        read_arpa(tmp_path / "missing.arpa")


def _sentence_logprob(lm: NgramLM, words) -> float:
    h, total = ["<s>"], 0.0
    for w in list(words) + ["</s>"]:
        total += lm.logprob(w, h)
        h.append(w)
    return total


@pytest.mark.parametrize("expand", ["full", "minimal"])
def test_one_to_one_total_is_lm_probability(arpa_file, expand):
    """With zero emissions, total over T frames = log sum_{|c|=T} p_LM(c </s>) (enumerated)."""
    lm = read_arpa(arpa_file)
    symbols = {"a": 0, "b": 1}
    graph = ngram_graph(lm, symbols, one_to_one(), expand=expand)
    for T in (1, 2, 3, 4):
        want = math.log(sum(math.exp(_sentence_logprob(lm, seq))
                            for seq in itertools.product("ab", repeat=T)))
        got = float(total_score(torch.zeros(1, T, 2, dtype=torch.float64), torch.tensor([T]), graph)[0])
        assert math.isclose(got, want, rel_tol=1e-9), (T, expand)
    # emissions that pin one sequence give exactly its LM probability
    em = torch.full((1, 3, 2), -math.inf, dtype=torch.float64)
    for t, c in enumerate([0, 1, 0]):
        em[0, t, c] = 0.0
    got = float(total_score(em, torch.tensor([3]), graph)[0])
    assert math.isclose(got, _sentence_logprob(lm, "aba"), rel_tol=1e-9)


def test_minimal_expansion_keeps_only_stored_histories():
    """A trigram over 6 tokens storing few bigrams: full has 1 + 6 + 36 histories."""
    toks = list("abcdef")
    lm = NgramLM(order=3)
    lm.probs[1] = {(t,): -0.8 for t in toks + ["</s>"]}
    lm.probs[1][("<s>",)] = -99.0
    lm.probs[2] = {("<s>", "a"): -0.3, ("a", "b"): -0.2}
    lm.probs[3] = {("<s>", "a", "b"): -0.1}
    lm.backoffs[1] = {(t,): -0.1 for t in toks}
    lm.backoffs[2] = {("<s>", "a"): -0.05}
    symbols = {t: i for i, t in enumerate(toks)}
    from uasr.graph import ngram_acceptor
    full = ngram_acceptor(lm, symbols, expand="full")
    small = ngram_acceptor(lm, symbols, expand="minimal")
    assert full.num_states == 1 + 6 + 36
    assert small.num_states == 1 + 2 + 6  # <s>; "<s> a", "a b"; the unigram histories
    g_full = ngram_graph(lm, symbols, one_to_one(), expand="full")
    g_small = ngram_graph(lm, symbols, one_to_one(), expand="minimal")
    em = torch.randn(3, 4, 6, dtype=torch.float64)
    lengths = torch.tensor([4, 2, 1])
    assert torch.allclose(total_score(em, lengths, g_full), total_score(em, lengths, g_small),
                          rtol=1e-9)


def test_loop_topology_weights_hand_checked(arpa_file):
    """loop: frames a a b = p(a|<s>) * stay * (1-stay) p(b|<s> a) * p(</s>|a b)."""
    lm = read_arpa(arpa_file)
    graph = ngram_graph(lm, {"a": 1, "b": 2}, loop(stay_prob=0.3))
    em = torch.full((1, 3, 3), -math.inf, dtype=torch.float64)
    for t, c in enumerate([1, 1, 2]):
        em[0, t, c] = 0.0
    want = (lm.logprob("a", ["<s>"]) + math.log(0.3) + math.log(0.7)
            + lm.logprob("b", ["<s>", "a"]) + lm.logprob("</s>", ["a", "b"]))
    # "a a b" can also be read as a, (repeat) a, b through the LM repeat arc
    repeat = (lm.logprob("a", ["<s>"]) + math.log(0.7) + lm.logprob("a", ["<s>", "a"])
              + math.log(0.7) + lm.logprob("b", ["a", "a"]) + lm.logprob("</s>", ["a", "b"]))
    got = float(total_score(em, torch.tensor([3]), graph)[0])
    assert math.isclose(got, math.log(math.exp(want) + math.exp(repeat)), rel_tol=1e-9)
    no_rep = ngram_graph(lm, {"a": 1, "b": 2}, loop(stay_prob=0.3, forbid_repeat=True))
    got = float(total_score(em, torch.tensor([3]), no_rep)[0])
    assert math.isclose(got, want, rel_tol=1e-9)
    res = viterbi(em, torch.tensor([3]), no_rep)
    assert res.labels[0] == [1, 2]


def test_loop_max_stay_bounds_each_label(arpa_file):
    """max_stay=1: "a a b" stays once (then must leave: weight 1); "a a a" needs two stays."""
    lm = read_arpa(arpa_file)
    graph = ngram_graph(lm, {"a": 1, "b": 2}, loop(stay_prob=0.3, forbid_repeat=True, max_stay=1))
    em = torch.full((2, 3, 3), -math.inf, dtype=torch.float64)
    for b, seq in enumerate([[1, 1, 2], [1, 1, 1]]):
        for t, c in enumerate(seq):
            em[b, t, c] = 0.0
    want = (lm.logprob("a", ["<s>"]) + math.log(0.3) + lm.logprob("b", ["<s>", "a"])
            + lm.logprob("</s>", ["a", "b"]))
    got = total_score(em, torch.tensor([3, 3]), graph, no_path="inf")
    assert math.isclose(float(got[0]), want, rel_tol=1e-9)
    assert got[1] == -math.inf
    res = viterbi(em[:1], torch.tensor([3]), graph)
    assert res.labels[0] == [1, 2]
    # one copy per (history, label) and stay count
    assert len(graph.labels) == 2 * len(ngram_graph(lm, {"a": 1, "b": 2},
                                                    loop(stay_prob=0.3, forbid_repeat=True)).labels)
    with pytest.raises(ValueError, match="max_stay"):
        loop(0.3, max_stay=0)


@pytest.mark.parametrize("silence", [None, 0])
def test_loop_max_stay_beyond_length_is_unbounded(arpa_file, silence):
    """No utterance of T frames can reach stay T: max_stay=T equals the unbounded loop."""
    lm = read_arpa(arpa_file)
    T = 4
    topo = dict(stay_prob=0.4, silence=silence, silence_prob=0.2)
    unbounded = ngram_graph(lm, {"a": 1, "b": 2}, loop(**topo))
    bounded = ngram_graph(lm, {"a": 1, "b": 2}, loop(**topo, max_stay=T))
    em = torch.randn(3, T, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([4, 3, 1])
    assert torch.allclose(total_score(em, lengths, bounded), total_score(em, lengths, unbounded),
                          rtol=1e-12)


def test_loop_silence_outside_lm_history(arpa_file):
    """a sil b: silence costs p_sil and does not advance the LM history."""
    lm = read_arpa(arpa_file)
    graph = ngram_graph(lm, {"a": 1, "b": 2}, loop(stay_prob=0.5, silence=0, silence_prob=0.2,
                                                 forbid_repeat=True))
    em = torch.full((1, 3, 3), -math.inf, dtype=torch.float64)
    for t, c in enumerate([1, 0, 2]):
        em[0, t, c] = 0.0
    want = (math.log(0.8) + lm.logprob("a", ["<s>"]) + math.log(0.5) + math.log(0.2)
            + math.log(0.5) + lm.logprob("b", ["<s>", "a"]) + lm.logprob("</s>", ["a", "b"]))
    got = float(total_score(em, torch.tensor([3]), graph)[0])
    assert math.isclose(got, want, rel_tol=1e-9)
    assert viterbi(em, torch.tensor([3]), graph).labels[0] == [1, 2]


def test_table_acceptor_equals_arpa_expansion(arpa_file):
    """The same LM as a dense (C+1)^(n-1) x C table gives the same totals as its ARPA."""
    from uasr.graph import compose, table_acceptor
    lm = read_arpa(arpa_file)
    toks = ["a", "b"]
    C = 2
    hist = toks + ["<s>"]  # index C = <s>
    logp = torch.tensor([[[lm.logprob(c, [hist[i], hist[j]]) for c in toks]
                          for j in range(C + 1)] for i in range(C + 1)], dtype=torch.float64)
    fin = torch.tensor([[lm.logprob("</s>", [hist[i], hist[j]]) for j in range(C + 1)]
                        for i in range(C + 1)], dtype=torch.float64)
    g_table = compose(table_acceptor(logp, fin), one_to_one())
    g_arpa = ngram_graph(str(arpa_file), {"a": 0, "b": 1}, one_to_one())
    em = torch.randn(3, 5, 2, dtype=torch.float64)
    lengths = torch.tensor([5, 3, 1])
    assert torch.allclose(total_score(em, lengths, g_table), total_score(em, lengths, g_arpa),
                          rtol=1e-9)
    with pytest.raises(ValueError, match="must have shape"):
        table_acceptor(torch.zeros(2, 2))
